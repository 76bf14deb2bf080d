#!/usr/bin/env python3
"""Upload a packed dataset directory to S3, as `aws s3 sync` would, with
the manifest last (a reader never sees a manifest before its data).

  s3_upload.py --endpoint http://127.0.0.1:8790 --bucket B --prefix cat/towers DIR \
      [--create] [--versioning]

--create makes the bucket; --versioning keeps old object versions, so a
running server reads the version it opened until it reloads. Credentials
come from the AWS_* environment variables (any value for a local server).
Needs boto3 (in the virtual environment scripts/s3_lib.sh makes).
"""
import argparse
import os

import boto3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--create", action="store_true")
    ap.add_argument("--versioning", action="store_true")
    a = ap.parse_args()
    s3 = boto3.client(
        "s3",
        endpoint_url=a.endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )
    if a.create:
        s3.create_bucket(Bucket=a.bucket)
    if a.versioning:
        s3.put_bucket_versioning(Bucket=a.bucket, VersioningConfiguration={"Status": "Enabled"})
    names = sorted(os.listdir(a.dir), key=lambda n: (n == "manifest.json", n))
    for n in names:
        s3.upload_file(os.path.join(a.dir, n), a.bucket, f"{a.prefix.strip('/')}/{n}")


if __name__ == "__main__":
    main()
