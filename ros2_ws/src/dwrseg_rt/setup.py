"""ament_python package of the dwrseg_rt ROS 2 node.

The node's logic lives in the `dwrseg_rt` Python library (pip install it into the Python
ROS uses); this package adds the executable, the launch file and the parameters. Its module
is `dwrseg_rt_ros` so that it does not shadow the library.
"""

from setuptools import setup

PACKAGE = "dwrseg_rt"
LAUNCH = "../../../launch/segment.launch.py"  # the repository's top-level launch/ (data_files must be relative)

setup(
    name="dwrseg_rt_ros",  # not "dwrseg_rt": that distribution name is the pip library's
    version="0.1.0",
    packages=["dwrseg_rt_ros"],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", [LAUNCH]),
        (f"share/{PACKAGE}/config", ["config/params.yaml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="dwrseg-rt developers",
    maintainer_email="dev@dwrseg-rt.local",
    description="DWRSeg semantic segmentation node",
    license="Apache-2.0",
    entry_points={"console_scripts": ["segment_node = dwrseg_rt_ros.segment_node:main"]},
)
