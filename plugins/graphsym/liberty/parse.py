"""Read Liberty files into the :class:`~.model.Library` model.

The meaning of groups and attributes follows the Synopsys Liberty Reference Manual (versions
2007.03 and R-2020.09). An ``lu_table_template`` names the variables of NLDM tables, and
``variable_1`` is the axis of ``index_1`` and of the outer list of ``values``. The units
``time_unit`` and ``capacitive_load_unit`` scale every time and capacitance. A ``timing()`` group
inside an output pin describes the arc from its ``related_pin``. Groups and attributes that this
reader does not use (power, noise, ``pg_pin``, operating conditions) are skipped without error.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .function import FunctionSyntaxError, compile_function, unateness
from .model import Cell, Library, LibertyError, Pin, Table, TimingArc
from .syntax import Attribute, Group, parse_groups

__all__ = ["parse_liberty", "read_liberty"]

logger = logging.getLogger(__name__)

_TABLE_KINDS = ("cell_rise", "cell_fall", "rise_transition", "fall_transition")
_SEQUENTIAL_GROUPS = frozenset({"ff", "latch", "ff_bank", "latch_bank", "statetable"})

# Template variables that are the input slew or the output load of a delay table. The older
# names come from libraries written before the ``input_net_transition`` spelling.
_SLEW_VARIABLES = frozenset({"input_net_transition", "input_transition_time"})
_LOAD_VARIABLES = frozenset({"total_output_net_capacitance"})

_TIME_UNITS_NS = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}
_CAPACITANCE_UNITS_PF = {"f": 1e12, "mf": 1e9, "uf": 1e6, "nf": 1e3, "pf": 1.0, "ff": 1e-3}
_NUMBER_SPLIT = re.compile(r"[\s,]+")


class _Reader:
    """Turns the group tree of one file into a Library; ``fail`` adds ``file:line``."""

    def __init__(self, source: str, strict: bool) -> None:
        self.source = source
        self.strict = strict
        self.templates: dict[str, Group] = {}
        self.time_scale = 1.0
        self.capacitance_scale = 1.0

    def fail(self, line: int, message: str) -> LibertyError:
        return LibertyError(f"{self.source}:{line}: {message}")

    def number(self, attribute: Attribute) -> float:
        try:
            return float(attribute.values[0])
        except (ValueError, IndexError):
            raise self.fail(
                attribute.line, f"attribute {attribute.name} has value {attribute.value!r}, expected a number"
            ) from None

    def numbers(self, attribute: Attribute) -> list[float]:
        """Parse every number of a complex attribute such as ``index_1 ("0.1, 0.2")``."""
        result: list[float] = []
        for argument in attribute.values:
            for text in _NUMBER_SPLIT.split(argument.strip()):
                if not text:
                    continue
                try:
                    result.append(float(text))
                except ValueError:
                    raise self.fail(
                        attribute.line, f"{attribute.name} contains {text!r}, which is not a number"
                    ) from None
        return result

    # -- library level --------------------------------------------------------------------

    def read_units(self, group: Group) -> None:
        time_unit = group.attribute("time_unit")
        if time_unit is not None:
            match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([a-zA-Z]+)\s*", time_unit.value)
            if match is None or match.group(2).lower() not in _TIME_UNITS_NS:
                raise self.fail(time_unit.line, f"time_unit {time_unit.value!r} is not like \"1ns\" or \"1ps\"")
            self.time_scale = float(match.group(1)) * _TIME_UNITS_NS[match.group(2).lower()]
        load_unit = group.attribute("capacitive_load_unit")
        if load_unit is None:
            logger.warning("%s: no capacitive_load_unit; assuming capacitances are in pF", self.source)
            return
        if len(load_unit.values) != 2 or load_unit.values[1].lower() not in _CAPACITANCE_UNITS_PF:
            raise self.fail(
                load_unit.line, f"capacitive_load_unit {load_unit.values} is not like (1, pf) or (1, ff)"
            )
        self.capacitance_scale = self.number(load_unit) * _CAPACITANCE_UNITS_PF[load_unit.values[1].lower()]

    def read_library(self, group: Group) -> Library:
        # NOTE: slew thresholds and slew_derate_from_library are kept as raw attributes only, so
        # transitions of libraries measured with different thresholds are not rescaled.
        self.read_units(group)
        library = Library(
            name=group.name,
            time_unit_ns=self.time_scale,
            capacitance_unit_pf=self.capacitance_scale,
            source=self.source,
        )
        for attribute in group.attributes:
            if attribute.complex:
                continue
            if attribute.name.startswith("default_"):
                try:
                    value = float(attribute.values[0])
                except ValueError:
                    library.attributes[attribute.name] = attribute.value
                    continue
                if "transition" in attribute.name:
                    value *= self.time_scale
                elif "cap" in attribute.name:
                    value *= self.capacitance_scale
                library.defaults[attribute.name] = value
            else:
                library.attributes[attribute.name] = attribute.value
        for template in group.subgroups("lu_table_template"):
            self.templates[template.name] = template
        for cell_group in group.subgroups("cell"):
            try:
                cell = self.read_cell(cell_group, library)
            except LibertyError as error:
                if self.strict:
                    raise
                logger.warning("skipped cell %s: %s", cell_group.name, error)
                continue
            if cell.name in library.cells:
                logger.warning("%s:%d: cell %s is defined again; the later one is kept",
                               self.source, cell.line, cell.name)
            library.cells[cell.name] = cell
        logger.info("read %d cells from %s (library %s)", len(library.cells), self.source, library.name)
        return library

    # -- cells and pins -----------------------------------------------------------------

    def read_cell(self, group: Group, library: Library) -> Cell:
        cell = Cell(name=group.name, line=group.line)
        area = group.attribute("area")
        if area is not None:
            cell.area = self.number(area)
        dont_use = group.attribute("dont_use")
        cell.dont_use = dont_use is not None and dont_use.value.lower() == "true"
        cell.is_sequential = any(sub.type in _SEQUENTIAL_GROUPS for sub in group.groups)

        pin_groups: list[tuple[Group, Group | None]] = [(pin, None) for pin in group.subgroups("pin")]
        for bus in group.groups:
            if bus.type in ("bus", "bundle"):
                pin_groups.extend((pin, bus) for pin in bus.subgroups("pin"))
        bus_names = {bus.name for bus in group.groups if bus.type in ("bus", "bundle")}

        timing_groups: list[tuple[Pin, Group]] = []
        for pin_group, bus in pin_groups:
            for name in pin_group.args:
                pin = self.read_pin(pin_group, name, bus, cell, library)
                cell.pins[name] = pin
                timing_groups.extend((pin, timing) for timing in pin_group.subgroups("timing"))

        for pin, timing in timing_groups:
            pin.arcs.extend(self.read_arcs(timing, pin, cell, bus_names))
        if not cell.is_sequential:
            self.check_functions(cell)
        return cell

    def read_pin(self, group: Group, name: str, bus: Group | None, cell: Cell, library: Library) -> Pin:
        def attribute(key: str) -> Attribute | None:
            found = group.attribute(key)
            if found is None and bus is not None:
                found = bus.attribute(key)
            return found

        direction = attribute("direction")
        if direction is None:
            raise self.fail(group.line, f"pin {name} of cell {cell.name} has no direction")
        pin = Pin(name=name, direction=direction.value.lower(), line=group.line)

        capacitance = attribute("capacitance")
        if capacitance is not None:
            pin.capacitance = self.number(capacitance) * self.capacitance_scale
        else:
            edges = [attribute(key) for key in ("rise_capacitance", "fall_capacitance")]
            found = [self.number(edge) for edge in edges if edge is not None]
            if found:
                pin.capacitance = max(found) * self.capacitance_scale
            elif pin.direction == "input":
                pin.capacitance = library.defaults.get("default_input_pin_cap", 0.0)

        function = attribute("function")
        if function is not None:
            pin.function = function.value.strip()
        for key in ("max_capacitance", "max_transition"):
            limit = attribute(key)
            if limit is not None:
                scale = self.capacitance_scale if key == "max_capacitance" else self.time_scale
                setattr(pin, key, self.number(limit) * scale)
        return pin

    def check_functions(self, cell: Cell) -> None:
        """Require a valid ``function`` on every output of a combinational cell."""
        inputs = {pin.name for pin in cell.pins.values() if pin.direction in ("input", "inout")}
        for pin in cell.output_pins:
            if pin.function is None:
                raise self.fail(pin.line, f"output pin {pin.name} of cell {cell.name} has no function")
            try:
                _, names = compile_function(pin.function)
            except FunctionSyntaxError as error:
                raise self.fail(pin.line, f"cell {cell.name}, pin {pin.name}: {error}") from None
            unknown = [name for name in names if name not in inputs]
            if unknown:
                raise self.fail(
                    pin.line,
                    f"function {pin.function!r} of {cell.name}/{pin.name} reads {', '.join(unknown)}, "
                    "which are not input pins of the cell",
                )

    # -- timing arcs and tables ---------------------------------------------------------

    def read_arcs(self, group: Group, pin: Pin, cell: Cell, bus_names: set[str]) -> list[TimingArc]:
        related = group.attribute("related_pin")
        if related is None:
            raise self.fail(group.line, f"timing group of {cell.name}/{pin.name} has no related_pin")
        related_names = related.value.split()
        for name in related_names:
            if name not in cell.pins and name not in bus_names:
                raise self.fail(
                    related.line,
                    f"timing arc of {cell.name}/{pin.name} has related_pin {name!r}, "
                    f"which is not a pin of the cell (pins: {', '.join(cell.pins)})",
                )
        sense = group.attribute("timing_sense")
        timing_type = group.attribute("timing_type")
        tables = {kind: self.read_table(table) for kind in _TABLE_KINDS for table in group.subgroups(kind)}
        arcs = []
        for name in related_names:
            if sense is not None:
                timing_sense = sense.value
            elif pin.function is not None and not cell.is_sequential:
                timing_sense = unateness(pin.function, name)
            else:
                timing_sense = "non_unate"
            arcs.append(
                TimingArc(
                    related_pin=name,
                    timing_sense=timing_sense,
                    timing_type=timing_type.value if timing_type is not None else "combinational",
                    line=group.line,
                    **tables,
                )
            )
        return arcs

    def read_table(self, group: Group) -> Table | None:
        """Read one NLDM table into (slew x load) order, scaled to ns and pF.

        Returns ``None`` (with a warning) for a table over variables other than input slew and
        output load, such as ``output_net_length``.
        """
        template_name = group.name
        variables: list[str] = []
        template = self.templates.get(template_name)
        if template is not None:
            for key in ("variable_1", "variable_2", "variable_3"):
                variable = template.attribute(key)
                if variable is not None:
                    variables.append(variable.value)
        elif template_name != "scalar":
            raise self.fail(group.line, f"{group.type} uses lu_table_template {template_name!r}, which is not defined")

        indices: list[list[float]] = []
        for axis, _ in enumerate(variables, start=1):
            own = group.attribute(f"index_{axis}")
            source = own if own is not None else template.attribute(f"index_{axis}")
            if source is None:
                raise self.fail(group.line, f"{group.type} has no index_{axis} and its template gives none")
            indices.append(self.numbers(source))

        values_attribute = group.attribute("values")
        if values_attribute is None:
            raise self.fail(group.line, f"{group.type} has no values")
        values = self.numbers(values_attribute)
        expected = 1
        for index in indices:
            expected *= len(index)
        if len(values) != expected:
            sizes = " x ".join(str(len(index)) for index in indices) or "1 (scalar)"
            raise self.fail(
                values_attribute.line,
                f"{group.type} has {len(values)} values, but its indices need {sizes} = {expected}",
            )

        slew_axis = load_axis = None
        for axis, variable in enumerate(variables):
            if variable in _SLEW_VARIABLES:
                slew_axis = axis
            elif variable in _LOAD_VARIABLES:
                load_axis = axis
            else:
                logger.warning("%s:%d: %s over %s is not supported and is skipped",
                               self.source, group.line, group.type, variable)
                return None
        slew_index = indices[slew_axis] if slew_axis is not None else [0.0]
        load_index = indices[load_axis] if load_axis is not None else [0.0]
        for name, index in (("input slew", slew_index), ("output load", load_index)):
            if any(later <= earlier for earlier, later in zip(index, index[1:])):
                raise self.fail(group.line, f"{group.type}: the {name} index {index} is not strictly increasing")

        # ``values`` lists variable_1 in the outer order; a load-first template is transposed.
        stride = len(indices[1]) if len(indices) == 2 else 1
        rows = []
        for i in range(len(slew_index)):
            row = []
            for j in range(len(load_index)):
                if load_axis == 0 and slew_axis == 1:
                    row.append(values[j * stride + i])
                elif slew_axis == 0 and load_axis == 1:
                    row.append(values[i * stride + j])
                else:
                    row.append(values[i + j])
            rows.append(tuple(row))
        table = Table(tuple(slew_index), tuple(load_index), tuple(rows))
        return table.scaled(self.time_scale, self.capacitance_scale, self.time_scale)


def parse_liberty(text: str, source: str = "<string>", *, strict: bool = True) -> Library:
    """Parse Liberty text into a :class:`Library`.

    Raises :class:`LibertyError` with ``source:line`` on syntax errors, a values count that does
    not match the table's indices, a ``related_pin`` that is not a pin of the cell, or a
    combinational cell's output pin without a valid ``function``. With ``strict=False`` a cell
    with such a problem is logged and left out, and syntax errors still raise.
    """
    groups = parse_groups(text, source)
    libraries = [group for group in groups if group.type == "library"]
    if not libraries:
        raise LibertyError(f"{source}:1: no library group found")
    if len(libraries) > 1:
        logger.warning("%s contains %d library groups; only the first is read", source, len(libraries))
    return _Reader(source, strict).read_library(libraries[0])


def read_liberty(path: str | Path, *, strict: bool = True) -> Library:
    """Read a Liberty file from ``path``; see :func:`parse_liberty` for errors."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    return parse_liberty(text, str(path), strict=strict)
