"""AlmenFlow test suite."""
