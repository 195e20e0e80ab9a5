#!/usr/bin/env python3
"""Compares a JUnit XML report with a checked-in list of expected failures.

Usage: compare-results.py REPORT.xml EXPECTED.txt LABEL [PREFIX]

Exit status: 0 as expected, 1 when a listed test now passes, 2 when
there are only unexpected failures. With UNEXPECTED_OUT set in the environment, the ids of unexpected failures
are also written there, one per line (for a re-run).

EXPECTED.txt has one test id per line (`file::Class::test`), then `#` and a
one-line reason. A line for one variant only (PREFIX, e.g. an eventlet hub)
starts with `@PREFIX `; other lines apply to every variant. A line starting
with `~` names a timing-sensitive test (one that also flakes on libzmq): it
may pass or fail. Exits 1 on an unexpected failure, or when a listed test now
passes (the list may only shrink: remove it). Prints the counts either way.
"""
import sys
import xml.etree.ElementTree as ET


def test_id(case):
    cls = case.get("classname", "")
    name = case.get("name", "")
    parts = cls.split(".")
    # pytest classnames look like tests.test_x.TestY: file + class path.
    path = []
    for i, p in enumerate(parts):
        if p.startswith("test_") or p.endswith("_test"):
            path = ["/".join(parts[: i + 1]) + ".py"] + parts[i + 1 :]
            break
    return "::".join(path + [name]) if path else f"{cls}::{name}"


def main():
    report, expected_file, label = sys.argv[1:4]
    prefix = sys.argv[4] if len(sys.argv) > 4 else ""
    expected = {}
    flaky = set()
    for line in open(expected_file):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tid, _, reason = line.partition("#")
        tid = tid.strip()
        # "~ test" marks a timing-sensitive test (it also flakes on libzmq):
        # tolerated whether it passes or fails.
        flaky_line = tid.startswith("~")
        tid = tid.lstrip("~").strip()
        # Lines for one variant only (an eventlet hub) start with "@variant ";
        # the others apply to every variant.
        if tid.startswith("@"):
            variant, _, tid = tid[1:].partition(" ")
            if variant != prefix:
                continue
        tid = tid.strip()
        if flaky_line:
            flaky.add(tid)
        else:
            expected[tid] = reason.strip()
    passed, failed, skipped = set(), set(), set()
    for case in ET.parse(report).getroot().iter("testcase"):
        tid = test_id(case)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(tid)
        elif case.find("skipped") is not None:
            skipped.add(tid)
        else:
            passed.add(tid)
    passed -= failed
    unexpected = sorted(failed - set(expected) - flaky)
    fixed = sorted(t for t in expected if t in passed)
    total = len(passed) + len(failed)
    print(f"{label}: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped "
          f"({len(failed) - len(unexpected)} failures expected)")
    for t in unexpected:
        print(f"  UNEXPECTED FAILURE: {t}")
    out = __import__("os").environ.get("UNEXPECTED_OUT")
    if out:
        with open(out, "w") as f:
            f.writelines(t + "\n" for t in unexpected)
    for t in fixed:
        print(f"  NOW PASSES (remove from {expected_file}): {t}")
    # 1: the list is stale (always an error); 2: only unexpected failures.
    if fixed:
        sys.exit(1)
    if unexpected:
        sys.exit(2)
    return total


if __name__ == "__main__":
    main()
