"""Reading a template's text: CloudFormation's short-form tags, lines, JSON, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.template.document import Located, parse, read

SHORT_FORMS = """
Resources:
  Fn:
    Properties:
      A: !Ref Name
      B: !GetAtt Queue.Arn
      C: !GetAtt [Queue, QueueName]
      D: !Sub "${AWS::Region}-x"
      E: !Join [",", [a, b]]
      F: !If [Cond, 1, 2]
      G: !Select [0, !Split [",", "a,b"]]
      H: !FindInMap [M, K, V]
      I: !Base64 text
      J: !Equals [a, b]
      K: !Not [!Condition C]
      L: !ImportValue Export
      M: !GetAtt Db.Endpoint.Address
"""


def test_short_forms_become_the_long_forms() -> None:
    document = parse(SHORT_FORMS, "t.yaml")
    props = document["Resources"]["Fn"]["Properties"]
    assert props["A"] == {"Ref": "Name"}
    assert props["B"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert props["C"] == {"Fn::GetAtt": ["Queue", "QueueName"]}
    assert props["D"] == {"Fn::Sub": "${AWS::Region}-x"}
    assert props["E"] == {"Fn::Join": [",", ["a", "b"]]}
    assert props["F"] == {"Fn::If": ["Cond", 1, 2]}
    assert props["G"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert props["H"] == {"Fn::FindInMap": ["M", "K", "V"]}
    assert props["I"] == {"Fn::Base64": "text"}
    assert props["J"] == {"Fn::Equals": ["a", "b"]}
    assert props["K"] == {"Fn::Not": [{"Condition": "C"}]}
    assert props["L"] == {"Fn::ImportValue": "Export"}
    assert props["M"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}


def test_every_mapping_knows_its_lines() -> None:
    document = parse(SHORT_FORMS, "t.yaml")
    props = document["Resources"]["Fn"]["Properties"]
    assert isinstance(props, Located)
    assert props.line_of("A") == 5 and props.line_of("M") == 17
    assert props.line_of("absent") == props.line == 5


def test_dates_stay_text() -> None:
    assert parse("AWSTemplateFormatVersion: 2010-09-09\n", "t")["AWSTemplateFormatVersion"] == (
        "2010-09-09"
    )


def test_json_is_read_too_even_with_tabs(tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text('{\n\t"Resources": {\n\t\t"Q": {"Type": "AWS::SQS::Queue"}\n\t}\n}\n')
    assert read(path)["Resources"] == {"Q": {"Type": "AWS::SQS::Queue"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Resources: [\n", "t.yaml:2: (yaml): invalid YAML"),
        ("A: 1\nA: 2\n", "t.yaml:2: (yaml): invalid YAML: duplicate key 'A' (first at line 1)"),
        ("- a\n", "t.yaml: (file): the template is a list, not a mapping"),
        ("", "t.yaml: (file): the template is empty"),
    ],
)
def test_text_that_is_not_a_template_is_one_located_problem(text: str, expected: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse(text, "t.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_a_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file; pass an existing template with -t"):
        read(tmp_path / "template.yaml")
