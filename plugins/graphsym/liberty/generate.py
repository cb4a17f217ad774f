"""Synthetic Liberty library derived from logical effort. It is NOT silicon data.

No foundry characterised these cells. Their NLDM tables follow the delay model of Sutherland,
Sproull & Harris, "Logical Effort: Designing Fast CMOS Circuits" (Morgan Kaufmann, 1999): the
delay of one CMOS stage is ``tau * (p + g * h)`` with logical effort ``g``, parasitic delay ``p``
and electrical effort ``h = C_load / C_in``. On top of that model this generator adds:

* a linear input-slew term in delay and output transition, since the book's model has none;
* a rise/fall asymmetry that grows with the number of series transistors in the switching
  network (a stack of PMOS makes the rise slower, a stack of NMOS the fall);
* drive strength ``k``: input capacitance ``k * unit_capacitance_pf`` per input (times 2 for
  XOR/XNOR inputs, which each drive two transistor pairs), and area growing with the total gate
  width;
* two-stage cells (AND, OR = NAND, NOR + inverter; BUF = two inverters) whose first stage is
  sized ``max(1, k // 2)`` and whose tables compose the two stages.

Logical efforts and parasitic delays used here: inverter g=1 p=1; NAND_n g=(n+2)/3 p=n;
NOR_n g=(2n+1)/3 p=n; XOR2/XNOR2 g=4 p=4 (the book's figures); AOI21 g=2 on A1/A2, 5/3 on B,
p=7/3; OAI21 g=2 on A1/A2, 4/3 on B, p=8/3; AOI22/OAI22 g=2 on every input, p=4 (derived here from
their pull-up and pull-down networks with the book's sizing rule).

The text is deterministic: the same parameters give the same bytes, so it can enter a
content-addressed cache key together with :data:`LIBRARY_VERSION`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "CELL_NAMES",
    "LIBRARY_NAME",
    "LIBRARY_VERSION",
    "SyntheticLibraryParams",
    "generate_library",
    "write_library",
]

logger = logging.getLogger(__name__)

# Bump whenever the generated text changes for the same parameters (formulas, formatting,
# cell list), because cached timing labels depend on these bytes.
LIBRARY_VERSION = "1"
LIBRARY_NAME = "graphsym_synthetic_le"
TEMPLATE_NAME = "delay_7x7"


@dataclass(frozen=True)
class SyntheticLibraryParams:
    """Parameters of the synthetic library; every default is a made-up but plausible value
    for a generic ~45 nm process, not a measurement."""

    tau_ns: float = 0.005
    """Delay unit ``tau`` of the logical-effort model (an FO4 inverter delay is about 5 tau), ns."""
    unit_capacitance_pf: float = 0.0015
    """Input capacitance of the INV_X1 input, pF."""
    unit_area: float = 0.133
    """Area per unit of gate width (the INV_X1 NMOS width is 1 unit, its PMOS 2), square um."""
    area_overhead: float = 2.0
    """Fixed area of every cell (diffusion breaks, well taps), in units of gate width."""
    slew_delay_coefficient: float = 0.15
    """Added delay per ns of input slew (dimensionless)."""
    slew_transition_coefficient: float = 0.05
    """Added output transition per ns of input slew (dimensionless)."""
    transition_effort_factor: float = 2.0
    """Output transition per unit of effort delay ``g * h``, relative to tau."""
    transition_parasitic_factor: float = 0.6
    """Output transition per unit of parasitic delay ``p``, relative to tau."""
    rise_penalty: float = 0.1
    """Extra fraction of delay on rising outputs of every stage (weaker PMOS mobility)."""
    series_penalty: float = 0.12
    """Extra fraction of delay per series transistor beyond the first in the switching stack."""
    max_transition_ns: float = 0.5
    """``default_max_transition`` of the library, ns."""
    slew_index_ns: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)
    """``index_1`` of every table: input slew, ns."""
    load_index_pf: tuple[float, ...] = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032)
    """``index_2`` of an X1 cell's tables, output load in pF; an Xk cell's index is k times this."""


@dataclass(frozen=True)
class _Stage:
    """One static CMOS stage: logical effort per input pin, parasitic delay, and the longest
    series stack in the pull-up (PMOS) and pull-down (NMOS) networks."""

    efforts: dict[str, float]
    parasitic: float
    pull_up_depth: int
    pull_down_depth: int
    input_cap_factor: float = 1.0


@dataclass(frozen=True)
class _CellKind:
    """A logic function: its first stage, Liberty ``function``, timing sense and drive list.
    ``inverting_output`` adds the output inverter of AND, OR and BUF."""

    base: str
    stage: _Stage
    function: str
    timing_sense: str
    drives: tuple[int, ...]
    inverting_output: bool = False


def _nand(n: int) -> _Stage:
    pins = "ABC"[:n]
    return _Stage({pin: (n + 2) / 3 for pin in pins}, float(n), pull_up_depth=1, pull_down_depth=n)


def _nor(n: int) -> _Stage:
    pins = "ABC"[:n]
    return _Stage({pin: (2 * n + 1) / 3 for pin in pins}, float(n), pull_up_depth=n, pull_down_depth=1)


_INVERTER = _Stage({"A": 1.0}, 1.0, pull_up_depth=1, pull_down_depth=1)
_XOR = _Stage({"A": 4.0, "B": 4.0}, 4.0, pull_up_depth=2, pull_down_depth=2, input_cap_factor=2.0)

CELL_KINDS: tuple[_CellKind, ...] = (
    _CellKind("INV", _INVERTER, "!A", "negative_unate", (1, 2, 4, 8)),
    _CellKind("BUF", _INVERTER, "A", "positive_unate", (1, 2, 4, 8), inverting_output=True),
    _CellKind("NAND2", _nand(2), "!(A & B)", "negative_unate", (1, 2, 4)),
    _CellKind("NAND3", _nand(3), "!(A & B & C)", "negative_unate", (1, 2, 4)),
    _CellKind("NOR2", _nor(2), "!(A | B)", "negative_unate", (1, 2, 4)),
    _CellKind("NOR3", _nor(3), "!(A | B | C)", "negative_unate", (1, 2, 4)),
    _CellKind("AND2", _nand(2), "(A & B)", "positive_unate", (1, 2, 4), inverting_output=True),
    _CellKind("AND3", _nand(3), "(A & B & C)", "positive_unate", (1, 2, 4), inverting_output=True),
    _CellKind("OR2", _nor(2), "(A | B)", "positive_unate", (1, 2, 4), inverting_output=True),
    _CellKind("OR3", _nor(3), "(A | B | C)", "positive_unate", (1, 2, 4), inverting_output=True),
    _CellKind("AOI21", _Stage({"A1": 2.0, "A2": 2.0, "B": 5 / 3}, 7 / 3, 2, 2),
              "!((A1 & A2) | B)", "negative_unate", (1, 2)),
    _CellKind("OAI21", _Stage({"A1": 2.0, "A2": 2.0, "B": 4 / 3}, 8 / 3, 2, 2),
              "!((A1 | A2) & B)", "negative_unate", (1, 2)),
    _CellKind("AOI22", _Stage({"A1": 2.0, "A2": 2.0, "B1": 2.0, "B2": 2.0}, 4.0, 2, 2),
              "!((A1 & A2) | (B1 & B2))", "negative_unate", (1, 2)),
    _CellKind("OAI22", _Stage({"A1": 2.0, "A2": 2.0, "B1": 2.0, "B2": 2.0}, 4.0, 2, 2),
              "!((A1 | A2) & (B1 | B2))", "negative_unate", (1, 2)),
    _CellKind("XOR2", _XOR, "(A ^ B)", "non_unate", (1, 2)),
    _CellKind("XNOR2", _XOR, "!(A ^ B)", "non_unate", (1, 2)),
)

CELL_NAMES: tuple[str, ...] = tuple(f"{kind.base}_X{drive}" for kind in CELL_KINDS for drive in kind.drives)
OUTPUT_PIN = "Y"


class _StageTiming:
    """Delay and output transition of one stage with drive ``size`` for one input pin."""

    def __init__(self, params: SyntheticLibraryParams, stage: _Stage, pin: str, size: float) -> None:
        self.params = params
        self.stage = stage
        self.effort = stage.efforts[pin]
        self.input_cap = size * params.unit_capacitance_pf * stage.input_cap_factor

    def _asymmetry(self, output_rises: bool) -> float:
        params = self.params
        if output_rises:
            return 1.0 + params.rise_penalty + params.series_penalty * (self.stage.pull_up_depth - 1)
        return 1.0 + params.series_penalty * (self.stage.pull_down_depth - 1)

    def delay(self, slew: float, load: float, output_rises: bool) -> float:
        params = self.params
        effort_delay = self.effort * load / self.input_cap
        stage_delay = params.tau_ns * (self.stage.parasitic + effort_delay) * self._asymmetry(output_rises)
        return stage_delay + params.slew_delay_coefficient * slew

    def transition(self, slew: float, load: float, output_rises: bool) -> float:
        params = self.params
        effort_delay = self.effort * load / self.input_cap
        base = (params.transition_parasitic_factor * self.stage.parasitic
                + params.transition_effort_factor * effort_delay)
        return params.tau_ns * base * self._asymmetry(output_rises) + params.slew_transition_coefficient * slew


def _arc_tables(params: SyntheticLibraryParams, kind: _CellKind, pin: str, drive: int
                ) -> dict[str, list[list[float]]]:
    """Compute the four 7x7 tables of the arc from ``pin`` to the output of ``kind`` at ``drive``."""
    loads = [load * drive for load in params.load_index_pf]
    tables: dict[str, list[list[float]]] = {name: [] for name in
                                           ("cell_rise", "cell_fall", "rise_transition", "fall_transition")}
    if kind.inverting_output:
        first = _StageTiming(params, kind.stage, pin, max(1, drive // 2))
        second = _StageTiming(params, _INVERTER, "A", drive)
    else:
        first = _StageTiming(params, kind.stage, pin, drive)
        second = None
    for slew in params.slew_index_ns:
        rows = {name: [] for name in tables}
        for load in loads:
            for output_rises, delay_name, transition_name in (
                (True, "cell_rise", "rise_transition"),
                (False, "cell_fall", "fall_transition"),
            ):
                if second is None:
                    delay = first.delay(slew, load, output_rises)
                    transition = first.transition(slew, load, output_rises)
                else:
                    # The output inverter rises when the first stage falls, and vice versa.
                    internal_load = second.input_cap
                    internal_rises = not output_rises
                    internal_slew = first.transition(slew, internal_load, internal_rises)
                    delay = (first.delay(slew, internal_load, internal_rises)
                             + second.delay(internal_slew, load, output_rises))
                    transition = second.transition(internal_slew, load, output_rises)
                rows[delay_name].append(delay)
                rows[transition_name].append(transition)
        for name in tables:
            tables[name].append(rows[name])
    return tables


def _numbers(values: list[float] | tuple[float, ...]) -> str:
    return ", ".join(f"{value:.6f}" for value in values)


def _write_cell(lines: list[str], params: SyntheticLibraryParams, kind: _CellKind, drive: int) -> None:
    first_size = max(1, drive // 2) if kind.inverting_output else drive
    input_cap = first_size * params.unit_capacitance_pf * kind.stage.input_cap_factor
    # Area grows with total gate width, which is proportional to the stages' input capacitance:
    # 3 width units (1 NMOS + 2 PMOS) per unit of input capacitance, scaled by logical effort.
    width = sum(3 * effort * first_size * kind.stage.input_cap_factor for effort in kind.stage.efforts.values())
    if kind.inverting_output:
        width += 3 * drive
    area = params.unit_area * (params.area_overhead + width)
    loads = [load * drive for load in params.load_index_pf]

    lines.append(f"  cell ({kind.base}_X{drive}) {{")
    lines.append(f"    area : {area:.4f} ;")
    for pin in kind.stage.efforts:
        lines.append(f"    pin ({pin}) {{")
        lines.append("      direction : input ;")
        lines.append(f"      capacitance : {input_cap:.6f} ;")
        lines.append("    }")
    lines.append(f"    pin ({OUTPUT_PIN}) {{")
    lines.append("      direction : output ;")
    lines.append(f'      function : "{kind.function}" ;')
    lines.append(f"      max_capacitance : {loads[-1]:.6f} ;")
    for pin in kind.stage.efforts:
        tables = _arc_tables(params, kind, pin, drive)
        lines.append("      timing () {")
        lines.append(f'        related_pin : "{pin}" ;')
        lines.append(f"        timing_sense : {kind.timing_sense} ;")
        lines.append("        timing_type : combinational ;")
        for name, rows in tables.items():
            lines.append(f"        {name} ({TEMPLATE_NAME}) {{")
            lines.append(f'          index_1 ("{_numbers(params.slew_index_ns)}") ;')
            lines.append(f'          index_2 ("{_numbers(loads)}") ;')
            lines.append("          values ( \\")
            for row_number, row in enumerate(rows):
                separator = ", \\" if row_number < len(rows) - 1 else " \\"
                lines.append(f'            "{_numbers(row)}"{separator}')
            lines.append("          ) ;")
            lines.append("        }")
        lines.append("      }")
    lines.append("    }")
    lines.append("  }")


def generate_library(params: SyntheticLibraryParams | None = None) -> str:
    """Return the Liberty text of the synthetic library (times in ns, capacitances in pF)."""
    params = params or SyntheticLibraryParams()
    parameter_lines = [f"   {key} = {value}" for key, value in asdict(params).items()]
    lines = [
        "/*",
        f" * {LIBRARY_NAME}, version {LIBRARY_VERSION}: a SYNTHETIC cell library generated by adaptlab",
        " * graphsym. It is NOT silicon data: no foundry characterised these cells. Delay and",
        " * transition tables are derived from the logical-effort model (Sutherland, Sproull and",
        " * Harris, Logical Effort, 1999) plus a linear input-slew term and a rise/fall asymmetry.",
        " * Parameters:",
        *parameter_lines,
        " */",
        f"library ({LIBRARY_NAME}) {{",
        "  delay_model : table_lookup ;",
        '  time_unit : "1ns" ;',
        '  voltage_unit : "1V" ;',
        '  current_unit : "1mA" ;',
        '  pulling_resistance_unit : "1kohm" ;',
        "  capacitive_load_unit (1, pf) ;",
        "  nom_process : 1.0 ;",
        "  nom_voltage : 1.0 ;",
        "  nom_temperature : 25.0 ;",
        "  input_threshold_pct_rise : 50 ;",
        "  input_threshold_pct_fall : 50 ;",
        "  output_threshold_pct_rise : 50 ;",
        "  output_threshold_pct_fall : 50 ;",
        "  slew_lower_threshold_pct_rise : 20 ;",
        "  slew_upper_threshold_pct_rise : 80 ;",
        "  slew_lower_threshold_pct_fall : 20 ;",
        "  slew_upper_threshold_pct_fall : 80 ;",
        f"  default_max_transition : {params.max_transition_ns:.6f} ;",
        "  default_output_pin_cap : 0.0 ;",
        f"  default_input_pin_cap : {params.unit_capacitance_pf:.6f} ;",
        "  default_fanout_load : 1.0 ;",
        f"  lu_table_template ({TEMPLATE_NAME}) {{",
        "    variable_1 : input_net_transition ;",
        "    variable_2 : total_output_net_capacitance ;",
        f'    index_1 ("{_numbers(params.slew_index_ns)}") ;',
        f'    index_2 ("{_numbers(params.load_index_pf)}") ;',
        "  }",
    ]
    for kind in CELL_KINDS:
        for drive in kind.drives:
            _write_cell(lines, params, kind, drive)
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_library(path: str | Path, params: SyntheticLibraryParams | None = None) -> Path:
    """Write the synthetic library to ``path`` and return the path."""
    path = Path(path)
    text = generate_library(params)
    path.write_text(text, encoding="utf-8")
    logger.info("wrote synthetic library %s version %s (%d cells) to %s",
                LIBRARY_NAME, LIBRARY_VERSION, len(CELL_NAMES), path)
    return path
