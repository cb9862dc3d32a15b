"""A handler as AWS's Python examples write them: boto3 imported and a client made at module
level, which works on Lambda because its Python runtimes include the AWS SDK."""

import platform

import boto3
import botocore

s3 = boto3.client("s3")


def handler(event, context):
    return {
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "boto3_file": boto3.__file__,
        "region": s3.meta.region_name,
        "python": platform.python_version(),
    }


def from_layer(event, context):
    import greeting  # from the layer's python/ directory, on sys.path as on Lambda

    return {"greeting": greeting.greet(event.get("name", "world")), "file": greeting.__file__}
