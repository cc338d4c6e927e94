"""Expressions with a budget, checked without the sandbox pool: what is refused when a case type
is checked (static limits), and what a template refuses while it renders in-process (size
caps, text the database cannot store). Runaway evaluation in the pool: the integration tests."""

from __future__ import annotations

import time

import pytest

from domain.errors import BudgetExceeded
from services.expressions import CelCondition, DecisionTable, SandboxedTemplate

DOUBLE = "{% set a = 'x' * 5000 %}" + "{% set a = A %}" * 30 + "{{ a|length }}"


# -- CEL conditions -----------------------------------------------------------------------------


def test_comprehensions_nested_three_deep_are_refused_when_the_case_type_is_checked() -> None:
    three = "fields.items.all(a, fields.items.all(b, fields.items.all(c, a + b + c >= 0)))"
    with pytest.raises(ValueError, match="comprehensions nest 3 deep; the limit is 2"):
        CelCondition(three)
    two = "fields.items.all(a, fields.items.exists(b, a == b))"
    assert CelCondition(two).holds({"fields": {"items": [1, 2, 3]}})


def test_comprehension_names_inside_text_do_not_count_as_nesting() -> None:
    source = "fields.items.all(a, a != 'x.all(b, x.all(c, true))')"
    assert CelCondition(source).holds({"fields": {"items": ["y"]}})


def test_a_condition_longer_than_the_limit_is_refused() -> None:
    huge_list = "fields.n in [" + ", ".join(str(n) for n in range(2_000)) + "]"
    with pytest.raises(ValueError, match=r"the limit is 2,000 characters"):
        CelCondition(huge_list)


def test_an_ordinary_runtime_error_still_makes_a_condition_false() -> None:
    assert not CelCondition("1 / fields.n > 0").holds({"fields": {"n": 0}})
    assert not CelCondition("fields.items.all(x, x / 0 > 1)").holds({"fields": {"items": [1]}})


# -- templates: refused when the case type is checked -------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            "{% for a in range(9) %}{% for b in range(9) %}{% for c in range(9) %}."
            "{% endfor %}{% endfor %}{% endfor %}",
            "loops nest 3 deep; the limit is 2",
        ),
        ("{% for i in range(1000000) %}x{% endfor %}", r"range\(1000000\) is over 1,000 items"),
        ("{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}", "may not define macros"),
        ("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "recursive loops"),
        ("{{ case.title|indent(100000000) }}", "filter 'indent' is not allowed"),
        ("{{ case.title.ljust(100000000) }}", "may not call 'ljust'"),
        ("{{ lipsum(1000000) }}", "may not call 'lipsum'"),
        ('{{ "{:>999999999}".format(1) }}', "may not call 'format'"),
        ('{{ "a\\x00b" }}', "NUL"),
        ("{{ '" + "x" * 10_001 + "' }}", "the limit is 10,000 characters"),
    ],
)
def test_templates_that_could_run_away_are_refused_at_check_time(source: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SandboxedTemplate(source)


# -- templates: size caps while rendering -------------------------------------------------------


@pytest.mark.parametrize(
    "doubling",
    [
        "a ~ a",
        "a + a",
        "[a, a]|join",
        "a|center(a|length * 2)",
        "'%s%s'|format(a, a)",
        "'%s%s' % (a, a)",
        "a * 2",
    ],
)
def test_doubling_text_stops_at_the_size_cap_quickly(doubling: str) -> None:
    template = SandboxedTemplate(DOUBLE.replace("A", doubling))
    started = time.perf_counter()
    with pytest.raises(BudgetExceeded, match="over 100,000 characters") as refused:
        template.render({})
    assert time.perf_counter() - started < 0.5
    assert "shorten" in refused.value.hint


def test_a_namespace_cannot_double_text_either() -> None:
    source = (
        "{% set ns = namespace(a='x' * 5000) %}"
        + "{% set ns.a = ns.a ~ ns.a %}" * 30
        + "{{ ns.a|length }}"
    )
    with pytest.raises(BudgetExceeded, match="over 100,000 characters"):
        SandboxedTemplate(source).render({})


def test_format_widths_cannot_build_huge_text() -> None:
    with pytest.raises(BudgetExceeded, match="over 100,000 characters"):
        SandboxedTemplate("{{ '%999999999s'|format(1) }}").render({})
    with pytest.raises(BudgetExceeded, match="over 100,000 characters"):
        SandboxedTemplate("{{ '%*s'|format(999999999, 1) }}").render({})
    assert SandboxedTemplate("{{ '%05d'|format(42) }}").render({}) == "00042"


def test_huge_numbers_are_refused() -> None:
    source = "{% set n = 2 ** 100 %}" + "{% set n = n ** 100 %}" * 5 + "{{ n > 1 }}"
    with pytest.raises(BudgetExceeded, match="numbers over"):
        SandboxedTemplate(source).render({})


def test_a_template_whose_output_is_too_long_is_refused() -> None:
    with pytest.raises(BudgetExceeded, match="over 100,000 characters"):
        SandboxedTemplate("{{ fields.text }}{{ fields.text }}").render(
            {"fields": {"text": "x" * 60_000}}
        )


@pytest.mark.parametrize(
    ("source", "problem"),
    [("{{ '%c'|format(0) }}", "NUL"), ("{{ '%c'|format(55296) }}", "lone surrogate")],
)
def test_a_template_rendering_text_the_database_cannot_store_is_refused(
    source: str, problem: str
) -> None:
    with pytest.raises(BudgetExceeded, match=problem):
        SandboxedTemplate(source, where="notifications.hello.body").render({})


def test_ordinary_template_errors_still_render_a_placeholder() -> None:
    assert (
        SandboxedTemplate("{{ fields.n + 1 }}").render({"fields": {}}).startswith("[template error")
    )
    assert SandboxedTemplate("{{ 'ab' * 3 }}|{{ [1, 2]|join('-') }}").render({}) == "ababab|1-2"


# -- decision tables ----------------------------------------------------------------------------


def test_a_decision_table_with_too_many_rows_is_refused() -> None:
    rows = [([f"> {n}"], {"queue": "q"}) for n in range(501)]
    with pytest.raises(ValueError, match="has 501 rows; the limit is 500"):
        DecisionTable("t", ["fields.n"], ["queue"], rows)


def test_a_decision_table_input_nesting_closures_three_deep_is_refused() -> None:
    source = "len(map([1..10], map([1..10], map([1..10], #))))"
    with pytest.raises(ValueError, match="closures nest 3 deep; the limit is 2"):
        DecisionTable("t", [source], ["queue"], [(["> 1"], {"queue": "q"})])


def test_a_decision_table_input_longer_than_the_limit_is_refused() -> None:
    source = "fields.n + " + " + ".join("1" for _ in range(600))
    with pytest.raises(ValueError, match=r"inputs\[0\]: .*the limit is 1,000 characters"):
        DecisionTable("t", [source], ["queue"], [(["> 1"], {"queue": "q"})])
