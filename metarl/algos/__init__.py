"""Meta-learners and the maths they share (returns, advantages, baseline, TRPO pieces)."""
