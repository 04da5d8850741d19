"""Custom ops: the selective scan (`lalm::selective_scan`, `lalm::selective_state_update`)."""
