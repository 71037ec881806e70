#!/usr/bin/env python3
"""Inverted index reducer: `word<TAB>N doc1,doc2,...`, the documents of each word sorted and without repeats."""
import sys


def flush(word, documents):
    if word is not None:
        names = sorted(documents)
        print(f"{word}\t{len(names)} {','.join(names)}")


current, documents = None, set()
for line in sys.stdin:
    word, _, document = line.rstrip("\n").partition("\t")
    if word != current:
        flush(current, documents)
        current, documents = word, set()
    documents.add(document)
flush(current, documents)
