"""Uploads every file under DIR to s3://BUCKET/ on ENDPOINT with boto3's upload_file
(default transfer settings: multipart above 8 MiB, 10 threads per file), PARALLEL files at
a time (the Pipe's `parallel`), and prints the seconds taken.

  boto_upload.py ENDPOINT BUCKET ACCESS SECRET DIR [PARALLEL]
"""
import concurrent.futures, os, sys, time
import boto3
from botocore.config import Config

endpoint, bucket, access, secret, root = sys.argv[1:6]
parallel = int(sys.argv[6]) if len(sys.argv) > 6 else 4
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                  region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                                         max_pool_connections=max(10, parallel * 10)))
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
t = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    list(pool.map(lambda p: s3.upload_file(p, bucket, os.path.relpath(p, root)), files))
print(f"{time.monotonic() - t:.2f}")
