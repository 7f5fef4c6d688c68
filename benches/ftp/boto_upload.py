"""Uploads every file under DIR to s3://BUCKET/ on ENDPOINT with boto3, 4 at a time
(the forwarder's default parallelism), and prints the seconds taken."""
import concurrent.futures, os, sys, time
import boto3
from botocore.config import Config

endpoint, bucket, access, secret, root = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                  region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
t = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(lambda p: s3.upload_file(p, bucket, os.path.relpath(p, root)), files))
print(f"{time.monotonic() - t:.2f}")
