"""Robot fleet dispatch: task assignment and conflict-free routing (CareRobotFleet)."""
