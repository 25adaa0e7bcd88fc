"""The cascade (above the models): each detector's operating threshold, the gold-vs-predicted
drop and its attribution, the summary and verdict, and the sanity checks."""
