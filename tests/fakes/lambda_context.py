"""The Lambda context object the tests hand to handlers: the attributes Powertools and our handlers read."""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT = "123456789012"
REGION = "us-west-2"


@dataclass
class LambdaContext:
    function_name: str = "aurora-restore-test-dev"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aurora-restore-test-dev"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
