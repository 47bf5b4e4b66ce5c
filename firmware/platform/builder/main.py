# SCons builder of slimhar's project-local PlatformIO platform.
# Cortex-M boards: Debian's arm-none-eabi toolchain from PATH (no registry package), and
# "upload" = run the ELF in QEMU. The "host" board: the system gcc, for unit tests.
from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment, Return

env = DefaultEnvironment()
board = env.BoardConfig()

if board.get("build.mcu") == "host":
    env.Replace(CC="gcc", CXX="g++", AR="gcc-ar", RANLIB="gcc-ranlib", PROGNAME="program")
    env.Append(CFLAGS=["-std=gnu11"], CXXFLAGS=["-std=gnu++17"], CCFLAGS=["-O1", "-g", "-Wall", "-Wextra"])
    # sanitizers named in build_flags must reach the link too
    env.Append(LINKFLAGS=[f for f in env.get("BUILD_FLAGS", []) if f.startswith("-fsanitize") or f == "-fno-sanitize-recover=all"])
    Default(env.BuildProgram())
    Return()

env.Replace(
    AR="arm-none-eabi-gcc-ar", AS="arm-none-eabi-gcc", CC="arm-none-eabi-gcc", CXX="arm-none-eabi-g++",
    OBJCOPY="arm-none-eabi-objcopy", RANLIB="arm-none-eabi-gcc-ranlib", SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.text|\.data|\.rodata|\.text.align|\.ARM.exidx)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES", SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGSUFFIX=".elf", PROGNAME="firmware",
)
cpu = ["-mcpu=%s" % board.get("build.cpu", "cortex-m4"), "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
env.Append(
    ASFLAGS=cpu + ["-x", "assembler-with-cpp"],
    CCFLAGS=cpu + ["-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra"],
    CFLAGS=["-std=gnu11"],
    CXXFLAGS=["-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics", "-fno-use-cxa-atexit"],
    LINKFLAGS=cpu + ["-Wl,--gc-sections", "--specs=nano.specs", "--specs=nosys.specs",
                     "-Wl,-Map,${BUILD_DIR}/firmware.map"],   # the board's build.ldscript is added by PlatformIO
    LIBS=["c_nano", "m", "gcc", "nosys"],
    BUILDERS=dict(ElfToBin=Builder(action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Bin -> $TARGET"),
                                   suffix=".bin")),
)
if not any(f.startswith("-O") for f in env.get("BUILD_FLAGS", [])):
    env.Append(CCFLAGS=["-O2"])

elf = env.BuildProgram()
binf = env.ElfToBin("$BUILD_DIR/${PROGNAME}", elf)
AlwaysBuild(env.Alias("size", elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))
# `pio run -t upload` runs the ELF in QEMU with its UART on this terminal (Ctrl-A X quits);
# -icount makes timers count instructions (deterministic)
qemu = ("qemu-system-arm -M %s -nographic -monitor none -serial stdio "
        "-semihosting-config enable=on,target=native -icount shift=0 -kernel $SOURCE"
        % board.get("build.qemu_machine", "mps2-an386"))
AlwaysBuild(env.Alias("upload", elf, env.VerboseAction(qemu, "Running $SOURCE in QEMU")))
Default([env.Alias("buildprog", [elf, binf])])
