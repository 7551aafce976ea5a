#!/usr/bin/env python3
"""Prints "N passed, N failed, N skipped" over the gtest cases in Bazel's
test.xml files. Exits non-zero if any case failed or bazel itself failed
(a target that did not build has no XML, so bazel's exit code counts too)."""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def main():
    root, bazel_rc = sys.argv[1], int(sys.argv[2])
    passed = failed = skipped = 0
    for path in glob.glob(os.path.join(root, "**", "test.xml"), recursive=True):
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            failed += 1
            continue
        for case in tree.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None or case.get("result") == "skipped":
                skipped += 1
            else:
                passed += 1
    if bazel_rc != 0 and failed == 0:
        failed = 1  # a build failure or a crash with no XML
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
