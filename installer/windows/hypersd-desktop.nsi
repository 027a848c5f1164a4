; HyperSD Desktop for Windows: a per-user installer (no administrator rights).
;
; Built by `python installer/build.py nsis` with makensis:
;   makensis -DVERSION=0.1.0 -DSOURCE=dist\hypersd-desktop -DOUTFILE=dist\HyperSD-Desktop-Setup-0.1.0.exe
; SOURCE is the frozen one-folder app (installer/hypersd_desktop.spec, built on Windows).

Unicode true
!include "MUI2.nsh"
!include "FileFunc.nsh"

!ifndef VERSION
  !error "define VERSION (makensis -DVERSION=...)"
!endif
!ifndef SOURCE
  !error "define SOURCE, the frozen app folder (makensis -DSOURCE=...)"
!endif
!ifndef OUTFILE
  !define OUTFILE "HyperSD-Desktop-Setup-${VERSION}.exe"
!endif

!define APP "HyperSD Desktop"
!define EXE "HyperSD Desktop.exe"  ; the windowed program; hypersd-desktop.exe is the command line
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\HyperSDDesktop"
; Open With for images (never their default program): the image opens in the window as if dropped on it.
!define PROGID "HyperSDDesktop.Image"
!define CLASSES "Software\Classes"
; Where the app keeps models, images and settings (platformdirs: %LOCALAPPDATA%\HyperSD Desktop).
!define DATA "$LOCALAPPDATA\${APP}"

Name "${APP}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
RequestExecutionLevel user
!ifdef QUICK
  SetCompressor zlib  ; for checking the script quickly (tests)
!else
  SetCompressor /SOLID lzma
!endif
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "LegalCopyright" "the HyperSD Desktop authors"

!define MUI_ICON "..\icons\hypersd-desktop.ico"
!define MUI_UNICON "..\icons\hypersd-desktop.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\${EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP}"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

!macro OpenWith EXTENSION
  WriteRegStr HKCU "${CLASSES}\${EXTENSION}\OpenWithProgids" "${PROGID}" ""
  WriteRegStr HKCU "${CLASSES}\Applications\${EXE}\SupportedTypes" "${EXTENSION}" ""
!macroend

!macro ForgetOpenWith EXTENSION
  DeleteRegValue HKCU "${CLASSES}\${EXTENSION}\OpenWithProgids" "${PROGID}"
!macroend

Section "${APP}" SecApp
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${SOURCE}\*.*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"
  CreateDirectory "$SMPROGRAMS\${APP}"
  CreateShortCut "$SMPROGRAMS\${APP}\${APP}.lnk" "$INSTDIR\${EXE}"
  CreateShortCut "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk" "$INSTDIR\Uninstall.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "the HyperSD Desktop authors"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${EXE}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" $0
  WriteRegStr HKCU "${CLASSES}\${PROGID}" "" "Image (${APP})"
  WriteRegStr HKCU "${CLASSES}\${PROGID}\DefaultIcon" "" '"$INSTDIR\${EXE}",0'
  WriteRegStr HKCU "${CLASSES}\${PROGID}\shell\open\command" "" '"$INSTDIR\${EXE}" "%1"'
  WriteRegStr HKCU "${CLASSES}\Applications\${EXE}" "FriendlyAppName" "${APP}"
  WriteRegStr HKCU "${CLASSES}\Applications\${EXE}\shell\open\command" "" '"$INSTDIR\${EXE}" "%1"'
  !insertmacro OpenWith ".png"
  !insertmacro OpenWith ".jpg"
  !insertmacro OpenWith ".jpeg"
  !insertmacro OpenWith ".webp"
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'  ; SHCNE_ASSOCCHANGED: Explorer rereads them
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  CreateShortCut "$DESKTOP\${APP}.lnk" "$INSTDIR\${EXE}"
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecApp} "The app: window, command line, gallery and model downloads."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecDesktop} "A shortcut on the desktop."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Section "Uninstall"
  Delete "$DESKTOP\${APP}.lnk"
  RMDir /r "$SMPROGRAMS\${APP}"
  RMDir /r "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  !insertmacro ForgetOpenWith ".png"
  !insertmacro ForgetOpenWith ".jpg"
  !insertmacro ForgetOpenWith ".jpeg"
  !insertmacro ForgetOpenWith ".webp"
  DeleteRegKey HKCU "${CLASSES}\${PROGID}"
  DeleteRegKey HKCU "${CLASSES}\Applications\${EXE}"
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
  ; The compute runtime (torch for this machine, up to several GB) is part of the program, made for
  ; its version by the app on first start: it goes with the program. The uv download cache too.
  RMDir /r "${DATA}\runtime"
  RMDir /r "${DATA}\runtime.partial"
  RMDir /r "${DATA}\runtime.old"
  RMDir /r "${DATA}\python"
  RMDir /r "${DATA}\Cache\uv"
  ; Models and images can be many gigabytes the person made or downloaded: ask, and keep them by default.
  IfFileExists "${DATA}\*.*" 0 done
    MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 \
      "Also delete your models, images and settings in$\r$\n${DATA}?$\r$\n$\r$\nChoose No to keep them for a later install." \
      /SD IDNO IDNO done
    RMDir /r "${DATA}"
  done:
SectionEnd
