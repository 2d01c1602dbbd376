import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ATTR_ID, EVENT_ID, IOCTL, LAYOUT, LINE_FLAG, decodeLineRequest, encodeLineRequest } from "../src/devices/gpio/uapi-layout.js";
import { makeTempDir } from "./helpers.js";

const HEADER = "/usr/include/linux/gpio.h";

/** Each struct field the driver uses, as C sees it. */
const FIELDS: Record<keyof typeof LAYOUT, string[]> = {
  gpiochip_info: ["name", "label", "lines"],
  gpio_v2_line_attribute: ["id", "padding", "value:flags"],
  gpio_v2_line_config_attribute: ["attr", "mask"],
  gpio_v2_line_config: ["flags", "num_attrs", "padding", "attrs"],
  gpio_v2_line_request: ["offsets", "consumer", "config", "num_lines", "event_buffer_size", "padding", "fd"],
  gpio_v2_line_info: ["name", "consumer", "offset", "num_attrs", "flags", "attrs", "padding"],
  gpio_v2_line_values: ["bits", "mask"],
  gpio_v2_line_event: ["timestamp_ns", "id", "offset", "seqno", "line_seqno", "padding"],
};

const IOCTL_MACROS: Record<keyof typeof IOCTL, string> = {
  GET_CHIPINFO: "GPIO_GET_CHIPINFO_IOCTL",
  GET_LINEINFO: "GPIO_V2_GET_LINEINFO_IOCTL",
  GET_LINE: "GPIO_V2_GET_LINE_IOCTL",
  LINE_SET_CONFIG: "GPIO_V2_LINE_SET_CONFIG_IOCTL",
  LINE_GET_VALUES: "GPIO_V2_LINE_GET_VALUES_IOCTL",
  LINE_SET_VALUES: "GPIO_V2_LINE_SET_VALUES_IOCTL",
};

/** Compiles and runs a C program against the kernel's own header; it prints every size, offset, ioctl number and enum value as JSON. */
function probeKernelHeader(): Record<string, number> {
  if (!existsSync(HEADER)) throw new Error(`${HEADER} is missing; install the kernel's uAPI headers: apt-get install linux-libc-dev`);
  if (spawnSync("cc", ["--version"]).error) throw new Error("no C compiler (cc) to compile the layout probe; install one: apt-get install gcc");
  const lines: string[] = [];
  const print = (key: string, expr: string): void => void lines.push(`  printf("%s\\"${key}\\": %llu", first++ ? ",\\n" : "", (unsigned long long)(${expr}));`);
  for (const [struct, fields] of Object.entries(FIELDS)) {
    print(`${struct}.size`, `sizeof(struct ${struct})`);
    for (const f of fields) {
      const [ours, theirs = ours] = f.split(":");
      print(`${struct}.${ours}`, `offsetof(struct ${struct}, ${theirs})`);
    }
  }
  for (const [ours, macro] of Object.entries(IOCTL_MACROS)) print(`IOCTL.${ours}`, macro);
  for (const name of Object.keys(LINE_FLAG)) print(`LINE_FLAG.${name}`, `GPIO_V2_LINE_FLAG_${name}`);
  for (const name of Object.keys(ATTR_ID)) print(`ATTR_ID.${name}`, `GPIO_V2_LINE_ATTR_ID_${name}`);
  for (const name of Object.keys(EVENT_ID)) print(`EVENT_ID.${name}`, `GPIO_V2_LINE_EVENT_${name}`);
  print("GPIO_MAX_NAME_SIZE", "GPIO_MAX_NAME_SIZE");
  print("GPIO_V2_LINES_MAX", "GPIO_V2_LINES_MAX");
  print("GPIO_V2_LINE_NUM_ATTRS_MAX", "GPIO_V2_LINE_NUM_ATTRS_MAX");
  const program = `#include <stddef.h>\n#include <stdio.h>\n#include <linux/gpio.h>\nint main(void) {\n  int first = 0;\n  printf("{");\n${lines.join("\n")}\n  printf("}\\n");\n  return 0;\n}\n`;
  const temp = makeTempDir();
  try {
    writeFileSync(join(temp.dir, "probe.c"), program);
    const cc = spawnSync("cc", ["-Wall", "-o", join(temp.dir, "probe"), join(temp.dir, "probe.c")], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`the layout probe did not compile against ${HEADER}:\n${cc.stderr}`);
    const run = spawnSync(join(temp.dir, "probe"), { encoding: "utf8" });
    return JSON.parse(run.stdout) as Record<string, number>;
  } finally {
    temp.remove();
  }
}

describe("uAPI v2 layout against the kernel's linux/gpio.h", () => {
  it("every struct size and field offset, every ioctl number and every flag the driver uses match the header", () => {
    const kernel = probeKernelHeader();
    const ours: Record<string, number> = {};
    for (const [struct, fields] of Object.entries(LAYOUT)) for (const [field, value] of Object.entries(fields)) ours[`${struct}.${field}`] = value;
    for (const [name, value] of Object.entries(IOCTL)) ours[`IOCTL.${name}`] = value;
    for (const [name, value] of Object.entries(LINE_FLAG)) ours[`LINE_FLAG.${name}`] = value;
    for (const [name, value] of Object.entries(ATTR_ID)) ours[`ATTR_ID.${name}`] = value;
    for (const [name, value] of Object.entries(EVENT_ID)) ours[`EVENT_ID.${name}`] = value;
    ours.GPIO_MAX_NAME_SIZE = 32;
    ours.GPIO_V2_LINES_MAX = 64;
    ours.GPIO_V2_LINE_NUM_ATTRS_MAX = 10;
    expect(ours).toEqual(kernel);
  });

  it("a line request round-trips through the layout: offsets, consumer, flags, attributes, and the fd the kernel writes", () => {
    const buf = encodeLineRequest({
      offsets: [17, 27],
      consumer: "labrig:a-consumer-name-longer-than-the-kernel-keeps",
      config: { flags: LINE_FLAG.OUTPUT | LINE_FLAG.ACTIVE_LOW, attrs: [{ attr: { id: ATTR_ID.OUTPUT_VALUES, value: 2n }, mask: 3n }, { attr: { id: ATTR_ID.DEBOUNCE, value: 5000n }, mask: 1n }] },
      eventBufferSize: 32,
    });
    expect(buf.length).toBe(LAYOUT.gpio_v2_line_request.size);
    buf.writeInt32LE(42, LAYOUT.gpio_v2_line_request.fd);
    expect(decodeLineRequest(buf)).toEqual({
      offsets: [17, 27],
      consumer: "labrig:a-consumer-name-longer-t",
      config: { flags: LINE_FLAG.OUTPUT | LINE_FLAG.ACTIVE_LOW, attrs: [{ attr: { id: ATTR_ID.OUTPUT_VALUES, value: 2n }, mask: 3n }, { attr: { id: ATTR_ID.DEBOUNCE, value: 5000n }, mask: 1n }] },
      eventBufferSize: 32,
      fd: 42,
    });
    // NUL-terminated within its 32 bytes, as the kernel requires.
    expect(buf[LAYOUT.gpio_v2_line_request.consumer + 31]).toBe(0);
  });
});
