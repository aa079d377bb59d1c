"""The node's side of media workers: placement, routing, failover and drain."""
