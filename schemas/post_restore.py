"""One post-restore SQL script: an S3 object, pinned by its SHA-256, run once after masking."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

S3Uri = Annotated[
    str,
    StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+$"),
    Field(description="The script's S3 object: s3://bucket/key"),
]


class PostRestoreScript(BaseModel):
    """A script run on the restored database as its master user, after masking and before the users:
    it runs only when the object's SHA-256 is `sha256`, so what runs is what was reviewed."""

    model_config = ConfigDict(extra="forbid")

    uri: S3Uri
    sha256: Annotated[
        str,
        StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True),
        Field(description="The object's SHA-256, hex: a changed object is refused, not run"),
    ]

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").split("/", 1)[0]

    @property
    def key(self) -> str:
        return self.uri.removeprefix("s3://").split("/", 1)[1]
