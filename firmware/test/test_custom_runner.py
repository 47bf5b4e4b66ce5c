# PlatformIO custom test runner (Unity is not installable offline): test programs print
#   TEST <name> PASS   /   TEST <name> FAIL <message>
# one line per check; this turns them into PlatformIO test cases.
import re

from platformio.public import TestCase, TestRunnerBase, TestStatus


class CustomTestRunner(TestRunnerBase):
    LINE = re.compile(r"^TEST\s+(?P<name>\S+)\s+(?P<status>PASS|FAIL)(?:\s+(?P<msg>.*))?$")

    def on_testing_line_output(self, line):
        if self.options.verbose:
            print(line, end="")
        m = self.LINE.match(line.strip())
        if m:
            self.test_suite.add_case(TestCase(
                name=m.group("name"),
                status=TestStatus.PASSED if m.group("status") == "PASS" else TestStatus.FAILED,
                message=m.group("msg")))
