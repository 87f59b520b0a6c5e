#!/usr/bin/env python3
"""The pipeline `bulkflow export` is measured against, as people run it today: simple-salesforce's
Bulk API 2.0 download to CSV files (one per results page), then pyarrow's CSV reader into one
zstd Parquet file. `--download-only` stops after the CSV files.

The simulator is on plain HTTP, and simple-salesforce builds https:// URLs from the instance it
is given; the URLs are rewritten to http:// after construction, nothing else is changed.

Usage: export_python.py CREDENTIALS_JSON SOQL OUT_DIR [--download-only]
"""
import glob
import json
import os
import sys
import time
import urllib.parse

import requests
from simple_salesforce import Salesforce


def session(creds):
    token = requests.post(
        creds["login_url"].rstrip("/") + "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "username": creds["username"],
            "password": creds["password"],
        },
        timeout=60,
    )
    token.raise_for_status()
    return token.json()


def main():
    creds_path, soql, out = sys.argv[1], sys.argv[2], sys.argv[3]
    download_only = "--download-only" in sys.argv[4:]
    with open(creds_path) as f:
        creds = json.load(f)
    token = session(creds)
    instance = urllib.parse.urlparse(token["instance_url"]).netloc
    sf = Salesforce(instance=instance, session_id=token["access_token"], version="63.0")
    for attr in ("base_url", "bulk2_url", "bulk_url", "apex_url", "metadata_url", "tooling_url", "oauth2_url"):
        if isinstance(getattr(sf, attr, None), str):
            setattr(sf, attr, getattr(sf, attr).replace("https://", "http://", 1))
    csv_dir = os.path.join(out, "csv")
    os.makedirs(csv_dir, exist_ok=True)
    started = time.monotonic()
    # wait=1: poll the job every second (simple-salesforce's default is 5).
    results = sf.bulk2.Account.download(soql, path=csv_dir, wait=1)
    rows = sum(r["number_of_records"] for r in results)
    downloaded = time.monotonic() - started
    if download_only:
        print(f"rows={rows} download_seconds={downloaded:.2f}")
        return
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parse = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(strings_can_be_null=True, column_types=None)
    writer = None
    written = 0
    for path in sorted(glob.glob(os.path.join(csv_dir, "*.csv"))):
        table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
        if writer is None:
            writer = pq.ParquetWriter(os.path.join(out, "accounts.parquet"), table.schema, compression="zstd")
        writer.write_table(table.cast(writer.schema))
        written += table.num_rows
    if writer is not None:
        writer.close()
    assert written == rows, (written, rows)
    print(f"rows={written} download_seconds={downloaded:.2f} total_seconds={time.monotonic() - started:.2f}")


if __name__ == "__main__":
    main()
