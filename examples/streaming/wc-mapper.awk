# Word count mapper in awk: one `word<TAB>1` line per whitespace-separated word.
{ for (i = 1; i <= NF; i++) print $i "\t1" }
