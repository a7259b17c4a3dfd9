"""medmec: the operator and edge workloads of a 5G smart-hospital MEC platform."""
