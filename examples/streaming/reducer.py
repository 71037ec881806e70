#!/usr/bin/env python3
"""Word count reducer: input arrives sorted by key, so equal words are consecutive; sum their counts."""
import sys

current, count = None, 0
for line in sys.stdin:
    word, _, value = line.rstrip("\n").partition("\t")
    if word == current:
        count += int(value)
        continue
    if current is not None:
        print(f"{current}\t{count}")
    current, count = word, int(value)
if current is not None:
    print(f"{current}\t{count}")
