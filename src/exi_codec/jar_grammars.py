"""Read EXIficient's precompiled schema-informed grammars out of the iso15118 package's jar.

The Java codec does not build grammars from the XSDs at run time: it instantiates generated classes
(`com.siemens.ct.exi.main.generatedgrammar.*`, produced by EXIficient's grammar generator from the
ISO 15118 / DIN SPEC 70121 XSDs; the DIN XSDs are not in the jar at all). Each class's constructor
is straight-line bytecode (new / dup / ldc / getfield / putfield / invoke*) that builds the grammar
graph. Executing that bytecode symbolically yields exactly the grammars the Java codec uses, which is
what byte-identical output needs, and needs no JRE: the jar is read as a zip.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass, field

from exi_codec.classfile import ClassFile, ClassRef

GENERATED_PACKAGE = "com/siemens/ct/exi/main/generatedgrammar/"


@dataclass(eq=False)
class JObj:
    """A symbolic Java object: class short name, constructor args, recorded method calls."""

    cls: str
    args: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    fields: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # keeps tracebacks readable on a huge graph
        return f"JObj({self.cls})"


def _arg_count(descriptor: str) -> tuple[int, bool]:
    """Number of arguments of a method descriptor and whether it returns a value."""
    params, ret = descriptor[1:].split(")")
    n, i = 0, 0
    while i < len(params):
        c = params[i]
        if c == "L":
            i = params.index(";", i)
        elif c == "[":
            i += 1
            continue
        n += 1
        i += 1
    return n, ret != "V"


def _short(internal_name: str) -> str:
    return internal_name.rsplit("/", 1)[-1]


class _Interpreter:
    def __init__(self, cf: ClassFile, this_name: str) -> None:
        self.cf = cf
        self.this = JObj(_short(this_name))
        self.this_name = this_name

    def run(self, method: str, args: list | None = None):
        code = self.cf.methods[method]
        cf = self.cf
        stack: list = []
        local = [self.this] + list(args or []) + [None] * 8
        pc = 0
        while pc < len(code):
            op = code[pc]
            if op == 0x2A:  # aload_0
                stack.append(local[0]); pc += 1
            elif 0x2B <= op <= 0x2D:  # aload_1..3
                stack.append(local[op - 0x2A]); pc += 1
            elif 0x4C <= op <= 0x4E:  # astore_1..3
                local[op - 0x4B] = stack.pop(); pc += 1
            elif op == 0xB4:  # getfield
                ref = cf.constant(struct.unpack_from(">H", code, pc + 1)[0])
                obj = stack.pop()
                stack.append(obj.fields[ref.name]); pc += 3
            elif op == 0xB5:  # putfield
                ref = cf.constant(struct.unpack_from(">H", code, pc + 1)[0])
                value = stack.pop()
                stack.pop().fields[ref.name] = value; pc += 3
            elif op == 0xB2:  # getstatic
                ref = cf.constant(struct.unpack_from(">H", code, pc + 1)[0])
                stack.append(JObj(_short(ref.owner) + "." + ref.name)); pc += 3
            elif op == 0x59:  # dup
                stack.append(stack[-1]); pc += 1
            elif op == 0x57:  # pop
                stack.pop(); pc += 1
            elif op == 0x01:  # aconst_null
                stack.append(None); pc += 1
            elif 0x02 <= op <= 0x08:  # iconst_m1..iconst_5
                stack.append(op - 0x03); pc += 1
            elif op == 0x10:  # bipush
                stack.append(struct.unpack_from(">b", code, pc + 1)[0]); pc += 2
            elif op == 0x11:  # sipush
                stack.append(struct.unpack_from(">h", code, pc + 1)[0]); pc += 3
            elif op == 0x12:  # ldc
                stack.append(self._ldc(code[pc + 1])); pc += 2
            elif op in (0x13, 0x14):  # ldc_w, ldc2_w
                stack.append(self._ldc(struct.unpack_from(">H", code, pc + 1)[0])); pc += 3
            elif op == 0xBB:  # new
                ref = cf.constant(struct.unpack_from(">H", code, pc + 1)[0])
                stack.append(JObj(_short(ref.name))); pc += 3
            elif op == 0xBD:  # anewarray
                n = stack.pop()
                stack.append([None] * n); pc += 3
            elif op == 0x53:  # aastore
                value = stack.pop(); index = stack.pop()
                stack.pop()[index] = value; pc += 1
            elif op == 0xC0:  # checkcast
                pc += 3
            elif op in (0xB6, 0xB7, 0xB8, 0xB9):  # invokevirtual/special/static/interface
                ref = cf.constant(struct.unpack_from(">H", code, pc + 1)[0])  # a MemberRef
                pc += 5 if op == 0xB9 else 3
                n, returns = _arg_count(ref.descriptor)
                call_args = stack[len(stack) - n :] if n else []
                del stack[len(stack) - n :]
                if op == 0xB8:  # static factory, e.g. IntegerValue.valueOf(int)
                    stack.append(JObj(_short(ref.owner) + "." + ref.name, call_args))
                    continue
                target = stack.pop()
                if op == 0xB7 and ref.name == "<init>":
                    if target is not self.this:
                        target.args = call_args
                    continue
                if target is self.this and ref.owner == self.this_name:
                    result = self.run(ref.name, call_args)
                else:
                    target.calls.append((ref.name, call_args))
                    result = JObj(f"{target.cls}.{ref.name}", call_args)
                if returns:
                    stack.append(result)
            elif op in (0xB0, 0xAC):  # areturn, ireturn
                return stack.pop()
            elif op == 0xB1:  # return
                return None
            else:
                raise NotImplementedError(f"opcode 0x{op:02x} at {pc} in {method}")
        return None

    def _ldc(self, index: int):
        value = self.cf.constant(index)
        if isinstance(value, ClassRef):
            return JObj("Class:" + value.name)
        return value


def read_jar_grammar(jar_path: str, class_name: str) -> tuple[JObj, JObj]:
    """Return the (document grammar, fragment grammar) symbolic objects of a generated class."""
    internal = GENERATED_PACKAGE + class_name
    with zipfile.ZipFile(jar_path) as jar:
        cf = ClassFile(jar.read(internal + ".class"))
    interp = _Interpreter(cf, internal)
    interp.run("<init>")
    return interp.run("getDocumentGrammar"), interp.run("getFragmentGrammar")
