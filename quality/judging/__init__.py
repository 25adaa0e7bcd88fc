"""Human judgments of captions: blind pairwise studies through Label Studio (or simulated
judges), their win rates, Bradley-Terry scores, position bias, judge agreement, and how well
each automatic metric tracks the judges."""
