"""Many pictures with one model: the plan, the local engine and Ray Data."""
