"""Files in and out: the one layer every command reads its inputs and writes its records through.

Reading (lazy, every problem named by file and line):
    ``jsonl``    JSON lines: UTF-8, BOM, CRLF, JSON and object checks per line
    ``rows``     any input format (JSONL, JSON, CSV, Parquet, datasets) as (location, row)
    ``prompts``  rows checked as prompts (fields, types, roles, ids once)
    ``invalid``  bad lines collected: one message for all, or the errors file (--skip-invalid)

Writing (see docs/safety.md):
    ``atomic``   whole files: temporary file, fsync, rename
    ``records``  append-only records, each id once, torn-tail repair, periodic fsync
    ``manifest`` how a dataset was made, and the settings a rerun must keep
    ``lock``     one writer per output
    ``signals``  SIGINT/SIGTERM as stop requests
    ``options``  --skip-invalid, --fsync-every, --fsync-seconds
    ``rundir``   ``Run``: all of the above for one run into one output
"""
