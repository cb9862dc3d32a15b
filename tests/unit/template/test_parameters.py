"""Parameters: defaults, --parameter-overrides in SAM's two spellings, CloudFormation's checks."""

from __future__ import annotations

import pytest

from orchestrator.template.document import parse
from orchestrator.template.intrinsics import Unresolvable
from orchestrator.template.parameters import parse_overrides, read_parameters

DECLARED = parse(
    """
Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
Memory: {Type: Number, Default: 128, MinValue: 128, MaxValue: 1024}
Subnets: {Type: CommaDelimitedList, Default: "a, b"}
Secret: {Type: String}
Version: {Type: "AWS::SSM::Parameter::Value<String>", Default: /cdk-bootstrap/version}
Code: {Type: String, Default: abc, AllowedPattern: "[a-z]+"}
""",
    "t",
)


def test_overrides_in_both_spellings_several_to_an_argument() -> None:
    given = ("Stage=prod Memory=512", "ParameterKey=Secret,ParameterValue='a b=c'", "Code='x y'")
    assert parse_overrides(given) == {
        "Stage": "prod",
        "Memory": "512",
        "Secret": "a b=c",
        "Code": "x y",
    }


@pytest.mark.parametrize("bad", ["Stage", "=dev", "Stage='dev"])
def test_a_malformed_override_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_overrides((bad,))


def test_defaults_overrides_and_lists() -> None:
    values, problems = read_parameters(DECLARED, {"Stage": "prod"}, "t")
    assert problems == []
    assert values["Stage"] == "prod" and values["Memory"] == "128"
    assert values["Subnets"] == ["a", "b"]


def test_no_value_and_ssm_values_are_unresolvable_with_the_fix() -> None:
    values, _ = read_parameters(DECLARED, {}, "t")
    secret, version = values["Secret"], values["Version"]
    assert isinstance(secret, Unresolvable) and isinstance(version, Unresolvable)
    assert str(secret) == (
        "parameter 'Secret' has no Default; give it a value with --parameter-overrides Secret=VALUE"
    )
    assert "is the value of SSM parameter '/cdk-bootstrap/version'" in str(version)
    values, _ = read_parameters(DECLARED, {"Version": "6"}, "t")
    assert values["Version"] == "6"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Stage": "test"}, "Parameters.Stage: given 'test' is not one of the AllowedValues"),
        ({"Memory": "64"}, "Parameters.Memory: given '64' is outside MinValue 128 to MaxValue"),
        ({"Memory": "lots"}, "Parameters.Memory: given 'lots' is not a number"),
        ({"Code": "A1"}, "Parameters.Code: given 'A1' does not match AllowedPattern"),
        (
            {"Stag": "dev"},
            "Parameters: --parameter-overrides gives 'Stag', which the template does not "
            "declare (did you mean 'Stage'?)",
        ),
    ],
)
def test_values_are_checked_as_cloudformation_checks_them(
    overrides: dict[str, str], message: str
) -> None:
    _, problems = read_parameters(DECLARED, overrides, "t")
    assert [f"{p.where}: {p.message}"[: len(message)] for p in problems] == [message]
