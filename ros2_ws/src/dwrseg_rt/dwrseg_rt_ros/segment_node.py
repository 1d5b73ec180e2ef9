"""`ros2 run dwrseg_rt segment_node`."""

import sys


def main(args=None) -> None:
    try:
        from dwrseg_rt.ros.node import main as run
    except ImportError:
        sys.exit("error: the dwrseg_rt library is not importable: pip install dwrseg-rt into the Python that ROS 2 uses")
    run(args)


if __name__ == "__main__":
    main()
