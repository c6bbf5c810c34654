"""The gateway EVs talk to: validates charging requests and forwards them to the balancer."""
