"""oracle.capabilities + fuzz.covering: declarations are validated with one clear error, decide
which Cases a target is given, and the coverage floor hits every cell some declaration admits —
by construction, whatever the targets return."""
import json

import pytest

from conv3dt.fuzz.coverage import GRADIENT_REQUIRED, REQUIRED, cells_of
from conv3dt.fuzz.covering import (VALID_CELLS, covering_cases, gradient_floor_extras, tripwire,
                                   unreachable)
from conv3dt.fuzz.grad_invalid import grad_family_examples
from conv3dt.fuzz.gradients import grad_output_for, gradient_cases
from conv3dt.fuzz.invalid import family_examples
from conv3dt.fuzz.realistic import boundary_cases
from conv3dt.fuzz.strategies import rare_cell_cases
from conv3dt.oracle.capabilities import (FULL, Capabilities, CapabilityError, load_file,
                                         read_declarations, union)

F32_NDHWC = Capabilities(dtypes=("float32", "float16"), layouts=("NDHWC",))
PLAIN = Capabilities(dtypes=("float32",), dilations=False, zero_size=False, argument_forms=False)


@pytest.mark.parametrize("obj, words", [
    ([], "mapping"), ({"dtype": ["float32"]}, "unknown key"), ({"dtypes": ["float128"]}, "float128"),
    ({"dtypes": "float32"}, "list of strings"), ({"dtypes": []}, "empty"),
    ({"dilations": "no"}, "true or false"), ({"schema": "other/2"}, "schema"),
])
def test_a_bad_declaration_is_one_clear_error(obj, words):
    with pytest.raises(CapabilityError, match=words) as info:
        Capabilities.from_mapping(obj, "mine.toml")
    assert str(info.value).startswith("mine.toml")


def test_admits_names_the_first_undeclared_fact():
    case = next(c for c in rare_cell_cases() if 0 in c.value.shape)
    assert FULL.admits(case) is None
    assert Capabilities(zero_size=False).admits(case) == "zero-size"
    assert Capabilities(dtypes=("float64",)).admits(case) == f"dtype {case.dtype}"
    families = {c.label: c for c in family_examples()}
    # an invalid dtype is the invalid family's business, not an undeclared dtype
    assert F32_NDHWC.admits(families["invalid:dtype-unsupported"]) is None
    assert F32_NDHWC.admits(families["invalid:dtype-mismatch"]) is None
    assert Capabilities(dtypes=("float64",)).admits(families["invalid:channel-in"]) == "dtype float32"
    assert Capabilities(layouts=("NCDHW",)).admits(families["invalid:channel-in"]) == "layout NDHWC"
    assert Capabilities(argument_forms=False).admits(families["invalid:alias-both-value"]) == "argument form"


def test_union_is_what_some_target_implements():
    u = union([F32_NDHWC, Capabilities(dtypes=("float64",), layouts=("NCDHW",), dilations=False)])
    assert u.dtypes == ("float32", "float64", "float16") and u.layouts == ("NDHWC", "NCDHW")
    assert u.dilations and union([]) == FULL


def test_files_toml_and_json(tmp_path):
    (tmp_path / "c.toml").write_text('dtypes = ["float32"]\nlayouts = ["NDHWC"]\n')
    assert load_file(tmp_path / "c.toml") == {"*": Capabilities(dtypes=("float32",), layouts=("NDHWC",))}
    (tmp_path / "t.json").write_text(json.dumps({"targets": {"m:f": {"zero_size": False}}}))
    assert read_declarations(tmp_path / "t.json")["m:f"]["declared"]["zero_size"] is False
    (tmp_path / "bad.toml").write_text("dtypes = [float32")
    with pytest.raises(CapabilityError, match="not valid TOML"):
        load_file(tmp_path / "bad.toml")
    with pytest.raises(CapabilityError, match="cannot read"):
        load_file(tmp_path / "missing.json")


@pytest.mark.parametrize("decls", [[FULL], [F32_NDHWC], [PLAIN], [F32_NDHWC, PLAIN]],
                         ids=["full", "f32-f16-ndhwc", "plain-f32", "two-targets"])
def test_the_floor_hits_every_reachable_cell_by_construction(decls):
    """The deterministic explicit Cases alone — covering set, family examples and boundary Cases
    built in the declared domain, rare zero-size cells — hit every required cell but those no
    declaration admits: the tripwire cannot fail a conforming target for want of luck."""
    domain = union(decls)
    floor = [c.case for c in covering_cases(decls)]
    floor += family_examples(domain.dtypes, domain.layouts, domain.paddings, domain.dilations,
                             domain.argument_forms)
    floor += [c for c in boundary_cases(domain=domain) + rare_cell_cases()]
    # the gradient floor (fuzz.covering.floor_for "grad_differential"), the same declarations
    # standing for a backward's, and the invalid families asked for a gradient (grad_invalid)
    floor += gradient_cases([c.case for c in covering_cases(decls)]) + gradient_floor_extras(decls)
    floor += [c.gradient_of("value", grad_output_for(c)[0]) for c in family_examples(
        domain.dtypes, domain.layouts, domain.paddings, domain.dilations, domain.argument_forms)]
    # and the backward's own families' examples (fuzz.grad_invalid), judged first by grad_invalid
    floor += grad_family_examples(domain.dtypes, domain.layouts, domain.paddings,
                                  domain.dilations, domain.argument_forms)
    admitted = [c for c in floor if any(d.admits(c) is None for d in decls)]
    hit = {cell for c in admitted for cell in cells_of(c)}
    out_of_reach = unreachable(decls, decls)
    assert not (set(REQUIRED) - hit - out_of_reach), sorted(set(REQUIRED) - hit - out_of_reach)
    assert covering_cases(decls) == covering_cases(decls)          # deterministic
    if decls == [FULL]:
        assert not out_of_reach
    else:   # what is named unreachable is exactly what the declarations exclude
        assert all(not any(d.admits(c) is None for d in decls) for c in floor
                   if set(cells_of(c)) & out_of_reach and set(cells_of(c)) <= out_of_reach)


def test_gradient_cells_are_required_only_with_a_gradient_target():
    """Without a gradient target no gradient cell can fail the tripwire; with one, each is."""
    assert set(GRADIENT_REQUIRED) <= unreachable([FULL])
    assert not set(GRADIENT_REQUIRED) & unreachable([FULL], [FULL])
    counts = {c: 1 for c in REQUIRED if c not in GRADIENT_REQUIRED}
    assert tripwire(counts, {"tf-eager": {}})[0] == []
    assert tripwire(counts, {"tf-eager": {}, "impl-grad": {}})[0] == list(GRADIENT_REQUIRED)


def test_tripwire_fails_only_on_reachable_gaps():
    facts = {"k:f": {"capabilities": {"declared": F32_NDHWC.to_json()}}}
    counts = {c: 1 for c in REQUIRED if c not in ("dtype=float64", "kernel=5")}
    gaps, named = tripwire(counts, facts)
    assert gaps == ["kernel=5"] and named == ["dtype=float64"]
    assert tripwire(counts, {})[0] == ["dtype=float64", "kernel=5"]
    assert VALID_CELLS <= set(REQUIRED)
