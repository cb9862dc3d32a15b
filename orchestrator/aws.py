"""lrun's AWS identity: the one account and region every ARN and event names, and the ARNs."""

from __future__ import annotations

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"


def function_arn(name: str, qualifier: str | None = None) -> str:
    """The ARN Lambda would give function ``name`` (optionally ``:qualifier``) in lrun's account."""
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn
