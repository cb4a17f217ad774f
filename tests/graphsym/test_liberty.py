"""Liberty reader, table interpolation, Boolean functions and the synthetic library."""

from __future__ import annotations

import itertools

import pytest

from adaptlab.plugins.graphsym.liberty import (
    LIBRARY_VERSION,
    LibertyError,
    SyntheticLibraryParams,
    Table,
    drive_strength,
    generate_library,
    parse_liberty,
    read_liberty,
    write_library,
)
from adaptlab.plugins.graphsym.liberty.function import FunctionSyntaxError, compile_function, unateness
from adaptlab.plugins.graphsym.liberty.generate import CELL_NAMES

# Capacitances in fF, a load-first template, a load-only and a scalar table, comments of both
# kinds, line continuations inside values and inside a quoted function, and groups the reader
# does not use (operating_conditions, internal_power, cell_footprint).
SMALL_LIBRARY = r"""/* Hand-written test library.
   The comment spans two lines. */
library (tiny) {
  delay_model : table_lookup ;
  time_unit : "1ns" ;
  capacitive_load_unit (1, ff) ;   // capacitances below are in fF
  default_max_transition : 0.4 ;
  default_input_pin_cap : 1.5 ;
  operating_conditions (typical) { process : 1 ; voltage : 1.1 ; temperature : 25 ; }
  lu_table_template (slew_by_load) {
    variable_1 : input_net_transition ;
    variable_2 : total_output_net_capacitance ;
    index_1 ("0.01, 0.1") ;
    index_2 ("1.0, 10.0") ;
  }
  lu_table_template (load_by_slew) {
    variable_1 : total_output_net_capacitance ;
    variable_2 : input_net_transition ;
    index_1 ("1.0, 10.0, 20.0") ;
    index_2 ("0.01, 0.1") ;
  }
  lu_table_template (load_only) { variable_1 : total_output_net_capacitance ; index_1 ("1.0, 10.0") ; }
  cell (INV_X2) {
    area : 1.25 ;
    cell_footprint : "inv" ;
    pin (A) { direction : input ; capacitance : 2.0 ; }
    pin (ZN) {
      direction : output ;
      function : "!A" ;
      max_capacitance : 60.0 ;
      internal_power () { related_pin : "A" ; rise_power (scalar) { values ("0.1") ; } }
      timing () {
        related_pin : "A" ;
        timing_sense : negative_unate ;
        cell_rise (slew_by_load) {
          values ("0.010, 0.100", \
                  "0.020, 0.110") ;
        }
        cell_fall (load_by_slew) {
          values ("0.005, 0.015", "0.050, 0.060", "0.100, 0.110") ;
        }
        rise_transition (load_only) { values ("0.02, 0.2") ; }
        fall_transition (scalar) { values ("0.03") ; }
      }
    }
  }
  cell (NAND2_X1) {
    area : 0.8 ;
    pin (A1) { direction : input ; capacitance : 1.6 ; }
    pin (A2) { direction : input ; rise_capacitance : 1.7 ; fall_capacitance : 1.5 ; }
    pin (ZN) {
      direction : output ;
      function : "!(A1 \
 & A2)" ;
      timing () { related_pin : "A1" ; cell_rise (scalar) { values ("0.01") ; } cell_fall (scalar) { values ("0.02") ; } }
      timing () {
        related_pin : "A2" ;
        timing_sense : negative_unate ;
        cell_rise (slew_by_load) { index_2 ("2.0, 20.0") ; values ("1, 2", "3, 4") ; }
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def small_library():
    return parse_liberty(SMALL_LIBRARY, "tiny.lib")


def test_parse_cells_pins_units(small_library) -> None:
    assert small_library.name == "tiny"
    assert sorted(small_library.cells) == ["INV_X2", "NAND2_X1"]
    assert small_library.capacitance_unit_pf == pytest.approx(1e-3)
    assert small_library.default_max_transition == pytest.approx(0.4)
    assert small_library.defaults["default_input_pin_cap"] == pytest.approx(0.0015)

    inverter = small_library.cell("INV_X2")
    assert inverter.area == pytest.approx(1.25)
    assert inverter.drive_strength == 2.0
    assert inverter.pins["A"].direction == "input"
    assert inverter.pins["A"].capacitance == pytest.approx(0.002)
    output = inverter.pins["ZN"]
    assert output.direction == "output"
    assert output.function == "!A"
    assert output.max_capacitance == pytest.approx(0.060)
    assert len(output.arcs) == 1
    assert output.arcs[0].related_pin == "A"
    assert output.arcs[0].timing_sense == "negative_unate"

    nand = small_library.cell("NAND2_X1")
    assert nand.pins["A2"].capacitance == pytest.approx(0.0017)
    assert [arc.related_pin for arc in nand.pins["ZN"].arcs] == ["A1", "A2"]


def test_table_in_slew_load_order(small_library) -> None:
    table = small_library.cell("INV_X2").pins["ZN"].arcs[0].cell_rise
    assert table.index_1 == pytest.approx((0.01, 0.1))
    assert table.index_2 == pytest.approx((0.001, 0.01))
    assert table.values == ((0.010, 0.100), (0.020, 0.110))


def test_swapped_template_is_transposed(small_library) -> None:
    table = small_library.cell("INV_X2").pins["ZN"].arcs[0].cell_fall
    assert table.index_1 == pytest.approx((0.01, 0.1))
    assert table.index_2 == pytest.approx((0.001, 0.010, 0.020))
    assert table.values == ((0.005, 0.050, 0.100), (0.015, 0.060, 0.110))
    assert table.lookup(0.1, 0.010) == pytest.approx(0.060)
    assert table.lookup(0.01, 0.020) == pytest.approx(0.100)


def test_one_dimensional_and_scalar_tables(small_library) -> None:
    arc = small_library.cell("INV_X2").pins["ZN"].arcs[0]
    for slew in (0.0, 0.05, 1.0):
        assert arc.rise_transition.lookup(slew, 0.0055) == pytest.approx(0.11)
        assert arc.fall_transition.lookup(slew, 0.5) == pytest.approx(0.03)


def test_table_index_override(small_library) -> None:
    arc = small_library.cell("NAND2_X1").pins["ZN"].arcs[1]
    assert arc.cell_rise.index_2 == pytest.approx((0.002, 0.020))
    assert arc.cell_fall is None


def test_line_continuation_in_function(small_library) -> None:
    function = small_library.cell("NAND2_X1").pins["ZN"].function
    assert "\\" not in function
    evaluate, names = compile_function(function)
    assert names == ["A1", "A2"]
    assert [evaluate({"A1": a, "A2": b}) for a, b in itertools.product((False, True), repeat=2)] == [
        True, True, True, False]


def test_missing_sense_inferred_from_function(small_library) -> None:
    arc = small_library.cell("NAND2_X1").pins["ZN"].arcs[0]
    assert arc.timing_sense == "negative_unate"
    assert arc.timing_type == "combinational"


def test_time_unit_scales_tables() -> None:
    text = SMALL_LIBRARY.replace('time_unit : "1ns"', 'time_unit : "100ps"')
    table = parse_liberty(text).cell("INV_X2").pins["ZN"].arcs[0].cell_rise
    assert table.index_1 == pytest.approx((0.001, 0.01))
    assert table.values[1][1] == pytest.approx(0.011)


# -- errors carry file:line ------------------------------------------------------------------

_HEADER = """library (bad) {
  time_unit : "1ns" ;
  capacitive_load_unit (1, pf) ;
  lu_table_template (t2x2) {
    variable_1 : input_net_transition ;
    variable_2 : total_output_net_capacitance ;
    index_1 ("0.1, 0.2") ;
    index_2 ("0.01, 0.02") ;
  }
"""
_GOOD_CELL = """  cell (INV) {
    pin (A) { direction : input ; capacitance : 0.001 ; }
    pin (Y) { direction : output ; function : "!A" ;
      timing () { related_pin : "A" ;
        cell_rise (t2x2) {
          values ("1, 2", "3, 4") ;
        }
      }
    }
  }
}
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ('values ("1, 2", "3, 4")', 'values ("1, 2", "3")', 15, "has 3 values, but its indices need 2 x 2 = 4"),
        ('related_pin : "A"', 'related_pin : "B"', 13, "related_pin 'B', which is not a pin of the cell"),
        ('function : "!A" ;', "", 12, "output pin Y of cell INV has no function"),
        ("capacitance : 0.001", "capacitance 0.001", 11, "expected ':' or '(' after 'capacitance'"),
        ('function : "!A"', 'function : "!B"', 12, "reads B, which are not input pins"),
        ('values ("1, 2", "3, 4")', 'values ("1, x", "3, 4")', 15, "contains 'x', which is not a number"),
        ("cell_rise (t2x2)", "cell_rise (t9x9)", 14, "lu_table_template 't9x9', which is not defined"),
    ],
)
def test_error_names_file_and_line(old: str, new: str, line: int, message: str) -> None:
    text = _HEADER + _GOOD_CELL
    assert old in text
    with pytest.raises(LibertyError) as caught:
        parse_liberty(text.replace(old, new), "bad.lib")
    assert str(caught.value).startswith(f"bad.lib:{line}: ")
    assert message in str(caught.value)


def test_unclosed_group_and_comment() -> None:
    with pytest.raises(LibertyError, match=r"^bad.lib:1: group library \(bad\) is not closed"):
        parse_liberty((_HEADER + _GOOD_CELL).rstrip()[:-1], "bad.lib")
    with pytest.raises(LibertyError, match=r"^bad.lib:3: comment '/\*' is not closed"):
        parse_liberty(_HEADER.replace("capacitive_load_unit", "/* capacitive_load_unit"), "bad.lib")
    with pytest.raises(LibertyError, match=r"^bad.lib:11: '}' closes no open group"):
        parse_liberty(_HEADER + "}\n}\n", "bad.lib")


def test_good_error_fixture_parses() -> None:
    library = parse_liberty(_HEADER + _GOOD_CELL)
    assert library.cell("INV").pins["Y"].arcs[0].cell_rise.values == ((1.0, 2.0), (3.0, 4.0))


def test_non_strict_skips_bad_cell() -> None:
    text = (_HEADER + _GOOD_CELL).replace('related_pin : "A"', 'related_pin : "B"')
    assert parse_liberty(text, strict=False).cells == {}


# -- interpolation ----------------------------------------------------------------------------

def test_bilinear_grid_points_and_midpoints() -> None:
    # f(s, l) = 2s + l + s*l is bilinear, so interpolation inside each cell is exact.
    table = Table((0.0, 1.0, 3.0), (0.0, 1.0), ((0.0, 1.0), (2.0, 4.0), (6.0, 10.0)))
    assert table.lookup(0.0, 0.0) == 0.0
    assert table.lookup(1.0, 1.0) == 4.0
    assert table.lookup(3.0, 1.0) == 10.0
    assert table.lookup(0.5, 0.5) == pytest.approx(1.75)
    assert table.lookup(2.0, 0.0) == pytest.approx(4.0)
    assert table.lookup(2.0, 0.5) == pytest.approx(5.5)


def test_bilinear_extrapolates_edge_segments() -> None:
    table = Table((0.0, 1.0, 3.0), (0.0, 1.0), ((0.0, 1.0), (2.0, 4.0), (6.0, 10.0)))
    # Past the last slew point the segment 1..3 continues: slope 2 at load 0.
    assert table.lookup(4.0, 0.0) == pytest.approx(8.0)
    # Below the first slew point the segment 0..1 continues.
    assert table.lookup(-1.0, 0.0) == pytest.approx(-2.0)
    # Past the last load point at slew 1: 2 + 2 * (4 - 2).
    assert table.lookup(1.0, 3.0) == pytest.approx(8.0)
    # Both axes outside: the corner cell's bilinear form f = 2s + l + s*l continues.
    assert table.lookup(4.0, 2.0) == pytest.approx(2 * 4.0 + 2.0 + 4.0 * 2.0)


def test_table_rejects_mismatched_shape() -> None:
    with pytest.raises(ValueError, match="table values are 1 x"):
        Table((0.0, 1.0), (0.0, 1.0), ((1.0, 2.0),))


# -- Boolean functions ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("function", "pin", "sense"),
    [
        ("!(A & B)", "A", "negative_unate"),
        ("A B + C", "C", "positive_unate"),
        ("(A ^ B)", "B", "non_unate"),
        ("!((A1 | A2) & B)", "A2", "negative_unate"),
        ("A' * B", "B", "positive_unate"),
    ],
)
def test_unateness_from_function(function: str, pin: str, sense: str) -> None:
    assert unateness(function, pin) == sense


def test_function_syntax_error() -> None:
    with pytest.raises(FunctionSyntaxError, match="not closed"):
        compile_function("!(A & B")


# -- synthetic library ------------------------------------------------------------------------

EXPECTED_CELLS = (
    [f"{base}_X{drive}" for base in ("INV", "BUF") for drive in (1, 2, 4, 8)]
    + [f"{base}_X{drive}" for base in ("NAND2", "NAND3", "NOR2", "NOR3", "AND2", "AND3", "OR2", "OR3")
       for drive in (1, 2, 4)]
    + [f"{base}_X{drive}" for base in ("AOI21", "OAI21", "AOI22", "OAI22", "XOR2", "XNOR2") for drive in (1, 2)]
)

TRUTH = {
    "INV": lambda v: not v["A"],
    "BUF": lambda v: v["A"],
    "NAND2": lambda v: not (v["A"] and v["B"]),
    "NAND3": lambda v: not (v["A"] and v["B"] and v["C"]),
    "NOR2": lambda v: not (v["A"] or v["B"]),
    "NOR3": lambda v: not (v["A"] or v["B"] or v["C"]),
    "AND2": lambda v: v["A"] and v["B"],
    "AND3": lambda v: v["A"] and v["B"] and v["C"],
    "OR2": lambda v: v["A"] or v["B"],
    "OR3": lambda v: v["A"] or v["B"] or v["C"],
    "AOI21": lambda v: not ((v["A1"] and v["A2"]) or v["B"]),
    "OAI21": lambda v: not ((v["A1"] or v["A2"]) and v["B"]),
    "AOI22": lambda v: not ((v["A1"] and v["A2"]) or (v["B1"] and v["B2"])),
    "OAI22": lambda v: not ((v["A1"] or v["A2"]) and (v["B1"] or v["B2"])),
    "XOR2": lambda v: v["A"] != v["B"],
    "XNOR2": lambda v: v["A"] == v["B"],
}


@pytest.fixture(scope="module")
def synthetic_library():
    return parse_liberty(generate_library(), "synthetic.lib")


def test_synthetic_round_trip_cells(synthetic_library) -> None:
    assert sorted(synthetic_library.cells) == sorted(EXPECTED_CELLS)
    assert sorted(CELL_NAMES) == sorted(EXPECTED_CELLS)
    for cell in synthetic_library.cells.values():
        inputs = [pin.name for pin in cell.input_pins]
        assert [pin.name for pin in cell.output_pins] == ["Y"]
        arcs = cell.pins["Y"].arcs
        assert sorted(arc.related_pin for arc in arcs) == sorted(inputs)
        for arc in arcs:
            for table in (arc.cell_rise, arc.cell_fall, arc.rise_transition, arc.fall_transition):
                assert len(table.index_1) == 7
                assert len(table.index_2) == 7


def test_synthetic_functions_truth_tables(synthetic_library) -> None:
    for cell in synthetic_library.cells.values():
        expected = TRUTH[cell.name.rsplit("_X", 1)[0]]
        evaluate, _ = compile_function(cell.pins["Y"].function)
        inputs = [pin.name for pin in cell.input_pins]
        for bits in itertools.product((False, True), repeat=len(inputs)):
            values = dict(zip(inputs, bits))
            assert evaluate(values) == bool(expected(values)), (cell.name, values)


def test_synthetic_inverter_logical_effort(synthetic_library) -> None:
    params = SyntheticLibraryParams()
    arc = synthetic_library.cell("INV_X1").pins["Y"].arcs[0]
    slew, load = params.slew_index_ns[2], params.load_index_pf[3]
    h = load / params.unit_capacitance_pf
    # tau * (p + g h) with p = 1, g = 1, a rising output 10 % slower, plus 0.15 ns/ns of slew.
    expected_rise = params.tau_ns * (1 + h) * 1.1 + 0.15 * slew
    expected_fall = params.tau_ns * (1 + h) + 0.15 * slew
    assert arc.cell_rise.lookup(slew, load) == pytest.approx(expected_rise, abs=1e-6)
    assert arc.cell_fall.lookup(slew, load) == pytest.approx(expected_fall, abs=1e-6)
    assert arc.cell_rise.lookup(slew, load) == pytest.approx(0.0231667, abs=1e-6)
    assert arc.timing_sense == "negative_unate"


def test_synthetic_effort_and_drive_scaling(synthetic_library) -> None:
    def delay(cell: str, load: float = 0.008) -> float:
        return synthetic_library.cell(cell).pins["Y"].arcs[0].cell_fall.lookup(0.02, load)

    assert delay("INV_X1") < delay("NAND2_X1") < delay("NAND3_X1")
    assert delay("NOR2_X1") < delay("NOR3_X1")
    assert delay("INV_X4") < delay("INV_X2") < delay("INV_X1")
    capacitance = {name: synthetic_library.cell(name).pins["A"].capacitance for name in ("INV_X1", "INV_X8")}
    assert capacitance["INV_X8"] == pytest.approx(8 * capacitance["INV_X1"])
    assert synthetic_library.cell("XOR2_X1").pins["A"].capacitance == pytest.approx(0.003)
    areas = [synthetic_library.cell(f"INV_X{drive}").area for drive in (1, 2, 4, 8)]
    assert areas == sorted(areas)
    assert synthetic_library.cell("AND2_X1").pins["Y"].arcs[0].timing_sense == "positive_unate"
    assert synthetic_library.cell("XOR2_X1").pins["Y"].arcs[0].timing_sense == "non_unate"


def test_synthetic_rise_slower_with_pmos_stack(synthetic_library) -> None:
    nor = synthetic_library.cell("NOR3_X1").pins["Y"].arcs[0]
    nand = synthetic_library.cell("NAND3_X1").pins["Y"].arcs[0]
    assert nor.cell_rise.lookup(0.02, 0.004) > nor.cell_fall.lookup(0.02, 0.004)
    assert nand.cell_fall.lookup(0.02, 0.004) > nand.cell_rise.lookup(0.02, 0.004) / 1.1


def test_synthetic_is_deterministic_and_marked(tmp_path) -> None:
    first = generate_library()
    assert first == generate_library()
    assert generate_library(SyntheticLibraryParams(tau_ns=0.006)) != first
    assert "SYNTHETIC" in first.splitlines()[1]
    assert "NOT silicon data" in first
    assert f"version {LIBRARY_VERSION}" in first
    path = write_library(tmp_path / "synthetic.lib")
    assert path.read_bytes() == first.encode("utf-8")


@pytest.mark.parametrize(
    ("name", "strength"),
    [("INV_X4", 4.0), ("NAND2X2", 2.0), ("sky130_fd_sc_hd__inv_8", 8.0), ("BUF_X0P5", 0.5), ("XOR2", None),
     ("AOI21", None)],
)
def test_drive_strength_from_name(name: str, strength: float | None) -> None:
    assert drive_strength(name) == strength


# Quoted group names and template variables, define() statements and backslash continuations
# between the rows of values, as in the SkyWater sky130 libraries.
SKY130_STYLE = r"""library ("demo_tt_025C_1v80") {
    define(def_sim_opt,library,string);
    technology("cmos");
    delay_model : "table_lookup";
    time_unit : "1ns";
    capacitive_load_unit(1.0000000000, "pf");
    lu_table_template ("del_1_2_2") {
        variable_1 : "input_net_transition";
        variable_2 : "total_output_net_capacitance";
        index_1("1, 2");
        index_2("1, 2");
    }
    cell ("demo__inv_2") {
        area : 3.7536000000;
        pg_pin ("VGND") { pg_type : "primary_ground"; }
        pin ("A") { capacitance : 0.0045; direction : "input"; }
        pin ("Y") {
            direction : "output";
            function : "(!A)";
            timing () {
                related_pin : "A";
                timing_sense : "negative_unate";
                timing_type : "combinational";
                cell_fall ("del_1_2_2") {
                    index_1("0.01, 0.5");
                    index_2("0.0005, 0.1");
                    values("0.020, 0.400", \
                        "0.090, 0.470");
                }
            }
        }
    }
}
"""


def test_sky130_style_quoting(tmp_path) -> None:
    path = tmp_path / "demo.lib"
    path.write_text(SKY130_STYLE)
    library = read_liberty(path)
    assert library.name == "demo_tt_025C_1v80"
    cell = library.cell("demo__inv_2")
    assert cell.drive_strength == 2.0
    assert cell.pins["A"].direction == "input"
    assert sorted(cell.pins) == ["A", "Y"]
    arc = cell.pins["Y"].arcs[0]
    assert arc.timing_sense == "negative_unate"
    assert arc.cell_rise is None
    assert arc.cell_fall.values == ((0.020, 0.400), (0.090, 0.470))
    assert arc.cell_fall.lookup(0.255, 0.05025) == pytest.approx((0.020 + 0.400 + 0.090 + 0.470) / 4)


def test_unclosed_string_is_named() -> None:
    with pytest.raises(LibertyError, match=r"^x.lib:2: string is not closed"):
        parse_liberty('library (x) {\n  time_unit : "1ns ;\n}\n', "x.lib")
