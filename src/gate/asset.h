/*
 * asset.h - files of web/ built into the binary with .incbin (private to
 * the gate folder). GATE_ASSET(name, "web/file") defines gk_asset_<name>
 * and gk_asset_<name>_end (one past the last byte; a NUL follows).
 */
#ifndef GK_GATE_ASSET_H
#define GK_GATE_ASSET_H

#define GATE_ASSET(name, file)						\
	__asm__(".section .rodata\n"					\
	    ".balign 16\n"						\
	    "gk_asset_" #name ":\n"					\
	    ".incbin \"" file "\"\n"					\
	    "gk_asset_" #name "_end:\n"				\
	    ".byte 0\n"							\
	    ".previous\n");						\
	extern const char gk_asset_##name[] __asm__("gk_asset_" #name);	\
	extern const char gk_asset_##name##_end[]			\
	    __asm__("gk_asset_" #name "_end")

#endif
