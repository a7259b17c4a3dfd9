"""Cloud nursing: wristband ID, vitals, NEWS2 early warning, medication closed loop (CloudNursingService)."""
