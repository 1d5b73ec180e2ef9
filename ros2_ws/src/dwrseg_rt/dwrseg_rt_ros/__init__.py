"""ROS 2 entry points of dwrseg_rt (the logic is in the dwrseg_rt library)."""
