# Word count reducer in awk: sums the counts of consecutive equal keys (the input is sorted by key).
# Keys are compared as strings ("" concatenation): awk would compare "2" and "2." as the number 2.
BEGIN { FS = "\t" }
{ key = $1 "" }
NR > 1 && key != word { print word "\t" count; count = 0 }
{ word = key; count += $2 }
END { if (NR > 0) print word "\t" count }
