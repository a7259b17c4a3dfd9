"""Slice QoS assurance: probe each slice's 5G links, judge them against the slice's
table 5-1 budget, write the verdict onto the MedicalSlice and act on breaches."""
