"""lrun: AWS Lambda's execution model, reproduced locally in real containers."""

__version__ = "0.1.0"
