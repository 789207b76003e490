"""template.yaml as CloudFormation would see it, offline: translated by the SAM translator, with
conditions, Fn::If, AWS::NoValue, parameter Refs, Fn::Split and Fn::Sub resolved for a parameter set, and
the template's Rules evaluated. Shared by the template checks (scripts/check_*.py), which run with the sam
venv's Python (it has samtranslator).
"""
import copy
import logging
import os
import re
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
NO_VALUE = object()


class NoManagedPolicies:
    """The template names no managed policy by name, so the translator needs no IAM look-up."""

    def load(self):
        return {}


def load(path=None):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The translator warns, at exit, that nobody published its usage metrics.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    return yaml_parse(Path(path or ROOT / "template.yaml").read_text())


def translate(template, parameters):
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"  # what `sam validate` does
    return transform(template, dict(parameters), NoManagedPolicies())


class Resolver:
    """Conditions, Fn::If, AWS::NoValue, parameter Refs, Fn::Split and Fn::Sub, as CloudFormation resolves them."""

    def __init__(self, template, parameters):
        self.values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
        self.values.update(parameters)
        self.values.setdefault("AWS::Region", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        self.conditions = template.get("Conditions", {})
        self.cache = {}

    def condition(self, name):
        if name not in self.cache:
            self.cache[name] = self.truth(self.conditions[name])
        return self.cache[name]

    def truth(self, node):
        (fn, args), = node.items()
        if fn == "Fn::Equals":
            return self.resolve(args[0]) == self.resolve(args[1])
        if fn == "Fn::Not":
            return not self.truth(args[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in args)
        if fn == "Condition":
            return self.condition(args)
        raise AssertionError(f"unsupported condition function {fn}")

    def resolve(self, node):
        if isinstance(node, list):
            items = [self.resolve(n) for n in node]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return self.resolve(yes if self.condition(name) else no)
        if set(node) == {"Ref"} and node["Ref"] == "AWS::NoValue":
            return NO_VALUE
        if set(node) == {"Ref"} and node["Ref"] in self.values:
            return self.values[node["Ref"]]
        if set(node) == {"Fn::Split"}:
            separator, value = (self.resolve(a) for a in node["Fn::Split"])
            if isinstance(value, str):
                return value.split(separator)
        if set(node) == {"Fn::Sub"}:
            text, names = node["Fn::Sub"] if isinstance(node["Fn::Sub"], list) else (node["Fn::Sub"], {})
            names = {**self.values, **self.resolve(names)}
            # ${Name} resolved when known (a parameter, a pseudo parameter, a mapping of the Sub); others stay.
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(names.get(m.group(1), m.group(0))), text)
        items = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in items.items() if v is not NO_VALUE}

    def failed_rules(self, rules):
        """The AssertDescription of every assertion of `rules` (the template's Rules) that fails."""
        failed = []
        for rule in rules.values():
            if "RuleCondition" in rule and not self.truth(rule["RuleCondition"]):
                continue
            failed += [a["AssertDescription"] for a in rule["Assertions"] if not self.truth(a["Assert"])]
        return failed


def resources(translated, parameters):
    """The translated template's resources that exist for `parameters`, each resolved."""
    resolver = Resolver(translated, parameters)
    return {
        name: resolver.resolve(r)
        for name, r in translated["Resources"].items()
        if "Condition" not in r or resolver.condition(r["Condition"])
    }
