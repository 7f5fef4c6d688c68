"""boto3 put_object of N objects of SIZE random bytes with THREADS threads to
s3://BUCKET on ENDPOINT; prints objects per second."""
import concurrent.futures, os, sys, time
import boto3
from botocore.config import Config

endpoint, bucket, access, secret = sys.argv[1:5]
n, size, threads = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                  region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                max_pool_connections=threads))
bodies = [os.urandom(size) for _ in range(64)]
t = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"boto/{i}", Body=bodies[i % 64]), range(n)))
print(f"{n / (time.monotonic() - t):.0f}")
