#!/usr/bin/env python3
"""Inverted index mapper: `word<TAB>document` once per word and document, the document named by
Hadoop's mapreduce_map_input_file (the input path as given to submit)."""
import os
import re
import sys

document = os.environ["mapreduce_map_input_file"]
seen = set()
for line in sys.stdin:
    for word in re.findall(r"[A-Za-z]+", line):
        if word not in seen:
            seen.add(word)
            print(f"{word}\t{document}")
