# Logs at several levels through Python's logging (awslambdaric formats and filters these from
# AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL), and prints, for the LoggingConfig tests.
import json
import logging

logger = logging.getLogger()


def handler(event, context):
    logger.debug("python debug")
    logger.info("python info")
    logger.warning("python warn")
    print("python print")
    print(json.dumps({"level": "DEBUG", "message": "python json debug"}))
    return "ok"
