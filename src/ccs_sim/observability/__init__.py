"""Records, metrics and logs: what the Live Controller keeps and shows about its sessions."""
