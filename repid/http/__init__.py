"""The small HTTP/1.1 server behind the health check and AsyncAPI docs servers."""

from repid.http.server import HttpLimits, HttpServer, Request, Response, encode_response

__all__ = ["HttpLimits", "HttpServer", "Request", "Response", "encode_response"]
