"""Mobile care: an ambulance's monitoring session served at the edge site of its base
station, moved with it at each handover (see README.md)."""
