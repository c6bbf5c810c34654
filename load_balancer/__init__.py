"""The load balancer: keeps a live view of every substation and sends each session to the best one."""
