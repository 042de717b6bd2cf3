#!/usr/bin/env python3
"""Replays the statements cleave's ClickHouse analytics store sent (a journal written by the
admin's conformance test) on a current ClickHouse engine, chDB, embedded in this process.

DDL for shard-local tables and the inserts (as JSONEachRow into those tables) run first, in
order; DDL that needs a cluster (Distributed tables) is skipped: one engine holds every unit.
Prints, as JSON, each query's rows in the order the queries were sent.

    python3 scripts/chdb-replay.py journal.json > answers.json
"""
import json
import sys
import tempfile

from chdb import session


def main(path):
    with open(path) as f:
        journal = json.load(f)
    answers = []
    with tempfile.TemporaryDirectory() as data:
        db = session.Session(data)
        db.query("SET output_format_json_quote_64bit_integers = 0")
        for statement in journal:
            kind, sql = statement["kind"], statement["sql"]
            if kind == "ddl":
                if statement.get("scope") == "distributed":
                    continue
                db.query(sql)
            elif kind == "insert":
                body = "\n".join(json.dumps(row) for row in statement["rows"])
                db.query(sql + "\n" + body)
            elif kind == "query":
                result = db.query(sql, "JSONEachRow")
                text = result.bytes().decode() if hasattr(result, "bytes") else str(result)
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
                answers.append({"sql": sql, "rows": rows})
        db.close()
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
