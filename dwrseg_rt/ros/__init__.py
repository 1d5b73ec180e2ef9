"""ROS 2: message conversion, the node logic, the rclpy node, the DDS bridge and rosbag processing."""
