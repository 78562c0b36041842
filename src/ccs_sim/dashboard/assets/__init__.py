"""Static files of the dashboard page (package data, served by ``ccs_sim.dashboard.routes``)."""
