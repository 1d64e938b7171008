"""emgflow: real-time surface-EMG control as YAML graphs of node processes over ZeroMQ."""

from .errors import EmgflowError, GraphError, ParamError
from .message import Msg, StreamInfo, now_ns
from .node import Node, Output
from .params import Param
from .ports import In, Out

__all__ = ["EmgflowError", "GraphError", "In", "Msg", "Node", "Out", "Output", "Param", "ParamError",
           "StreamInfo", "now_ns"]
__version__ = "0.1.0"
